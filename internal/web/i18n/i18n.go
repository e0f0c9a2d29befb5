// Package i18n holds the pages' languages: English, in which every message
// is written and which is its own key, and Russian, from the catalog in
// ru.go. A page's language comes from VK ID's lang_id, the lang cookie, or
// the browser's Accept-Language, in that order, and else the server's
// default (--lang).
package i18n

import (
	"fmt"
	"html/template"
	"regexp"
	"slices"
	"strings"
	"sync"

	"golang.org/x/text/language"
)

// Lang is a page language.
type Lang string

// The languages pages are written in.
const (
	English Lang = "en"
	Russian Lang = "ru"
)

// All lists the languages, the default first.
var All = []Lang{English, Russian}

var matcher = language.NewMatcher([]language.Tag{language.English, language.Russian})

// Parse reads a language code ("en", "ru"); ok is false for others.
func Parse(s string) (Lang, bool) {
	for _, l := range All {
		if string(l) == s {
			return l, true
		}
	}
	return "", false
}

// Prefer picks the language of an Accept-Language header (RFC 9110
// §12.5.4), or def when it names none of ours.
func Prefer(acceptLanguage string, def Lang) Lang {
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return def
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return def
	}
	return All[i]
}

// T is msg in l, with args formatted into it when there are any. A
// message the catalog lacks stays English, so text that is not a message
// (a name, an error from elsewhere) passes through unchanged. A message
// already formatted (an error's "User 5 is not an admin of community 7.")
// is translated through the catalog's format it was made from.
func (l Lang) T(msg string, args ...any) string {
	out := msg
	if l == Russian {
		if ru, ok := russian[msg]; ok {
			out = ru
		} else if len(args) == 0 {
			return formatted(msg)
		}
	}
	if len(args) > 0 {
		return fmt.Sprintf(out, args...)
	}
	return out
}

// HTML is T for a message that holds markup: the message (ours, from the
// catalog) is trusted, each argument is escaped.
func (l Lang) HTML(msg string, args ...any) template.HTML {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = template.HTMLEscapeString(fmt.Sprint(a))
	}
	return template.HTML(l.T(msg, esc...))
}

// Known reports whether the catalog translates msg.
func Known(msg string) bool {
	_, ok := russian[msg]
	return ok
}

// pattern is a catalog message with verbs (%d, %q, %s, %v), as a regular
// expression that matches what it formats to, and its Russian with every
// verb as %s, to take the matched text.
type pattern struct {
	re *regexp.Regexp
	ru string
}

var verb = regexp.MustCompile(`%[dqsv]`)

// patterns are the catalog's messages with verbs, longest first, so that
// the most specific one wins.
var patterns = sync.OnceValue(func() []pattern {
	var out []pattern
	for en, ru := range russian {
		if !verb.MatchString(en) || strings.Contains(en, "<") {
			continue
		}
		parts := verb.Split(en, -1)
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		out = append(out, pattern{re: regexp.MustCompile("^" + strings.Join(parts, "(.+?)") + "$"), ru: verb.ReplaceAllString(ru, "%s")})
	}
	slices.SortFunc(out, func(a, b pattern) int { return len(b.re.String()) - len(a.re.String()) })
	return out
})

// formatted translates text made from a catalog message with verbs, or
// returns it unchanged.
func formatted(text string) string {
	for _, p := range patterns() {
		if m := p.re.FindStringSubmatch(text); m != nil {
			args := make([]any, len(m)-1)
			for i, s := range m[1:] {
				args[i] = s
			}
			return fmt.Sprintf(p.ru, args...)
		}
	}
	return text
}

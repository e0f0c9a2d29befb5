package web

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"

	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/web/i18n"
)

// Every message of every page has both languages: each text a template
// shows goes through t or th and is in the catalog, and so is each fixed
// text the handlers put on a page (titles, headings, notices, errors).
func TestEveryMessageHasBothLanguages(t *testing.T) {
	msgs := map[string]string{} // message → where
	// The pages' templates: web's own and those beside each package.
	files := os.DirFS(".")
	names, _ := fs.Glob(files, "templates/*.html")
	theirs, _ := fs.Glob(files, "*/templates/*.html")
	if len(theirs) == 0 {
		t.Fatal("no templates found beside the page packages")
	}
	for _, name := range append(append(names, theirs...), "pages/blank.html") {
		src, _ := fs.ReadFile(files, name)
		trees, err := parse.Parse(name, string(src), "{{", "}}", map[string]any{"t": strings.ToUpper, "th": strings.ToUpper, "join": strings.ToUpper, "scopeText": strings.ToUpper, "print": strings.ToUpper, "or": strings.ToUpper, "eq": strings.ToUpper, "ne": strings.ToUpper, "not": strings.ToUpper})
		if err != nil {
			t.Fatal(err)
		}
		// The page's own text: the source without its actions and markup.
		if words := untranslated(actions.ReplaceAllString(string(src), "\x00")); words != "" {
			t.Errorf("%s: text %q is not a message: wrap it in t", name, words)
		}
		for _, tree := range trees {
			walk(tree.Root, func(n parse.Node) {
				switch n := n.(type) {
				case *parse.CommandNode:
					if len(n.Args) >= 2 {
						if id, ok := n.Args[0].(*parse.IdentifierNode); ok && (id.Ident == "t" || id.Ident == "th") {
							if s, ok := n.Args[1].(*parse.StringNode); ok {
								msgs[s.Text] = name
							}
						}
					}
				}
			})
		}
	}
	for msg, where := range goMessages(t) {
		msgs[msg] = where
	}
	for msg, where := range domainErrors(t) {
		msgs[msg] = where
	}
	for _, msg := range pageOAuthErrors {
		msgs[msg] = "an OAuth error shown on a page"
	}
	for _, a := range []scope.Audience{scope.User, scope.Community} {
		for _, s := range scope.All(a) {
			msgs[s.Description] = "scope " + s.Name
		}
	}
	for _, label := range auditLabels {
		msgs[label] = "auditLabels"
	}
	for _, typ := range []storage.AppType{storage.Standalone, storage.Web, storage.IFrame} {
		msgs[string(typ)] = "app types"
	}
	var missing []string
	for msg, where := range msgs {
		if !i18n.Known(msg) {
			missing = append(missing, where+": "+strconv.Quote(msg))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no Russian for %s", m)
	}
	if len(msgs) < 150 {
		t.Fatalf("found only %d messages: the scan is broken", len(msgs))
	}
}

// pageOAuthErrors are the OAuth errors /authorize shows on a page rather
// than sending to the app (the client or redirect URI is not to be
// trusted, or the person refused), and what the demo callback shows of
// those that reach it.
var pageOAuthErrors = []string{
	"client_id is incorrect",
	"redirect_uri is incorrect, check application redirect uri in the settings page",
	"the request is too large",
	"request_uri is unknown, used or expired",
	"User denied your request.",
	"User denied your request",
	"nobody is signed in, and prompt=none forbids asking",
	"the user has to approve the request, and prompt=none forbids asking",
}

// domainErrors are the platform's errors as a page shows them
// (web.Sentence): every literal message of internal/platform, with its
// field, the formats of invalid and notFound included (the catalog
// translates what they format to).
func domainErrors(t *testing.T) map[string]string {
	out := map[string]string{}
	fset := token.NewFileSet()
	files, err := filepath.Glob("../platform/*.go")
	if err != nil {
		t.Fatal(err)
	}
	str := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				id, ok := n.Fun.(*ast.Ident)
				if !ok {
					return true
				}
				switch {
				case id.Name == "invalid" && len(n.Args) >= 2:
					field, ok1 := str(n.Args[0])
					msg, ok2 := str(n.Args[1])
					if ok1 && ok2 {
						out[Sentence(errors.New(field+": "+msg))] = path
					}
				case id.Name == "notFound" && len(n.Args) >= 1:
					if msg, ok := str(n.Args[0]); ok {
						out[Sentence(errors.New(msg))] = path
					}
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); !ok || id.Name != "Error" {
					return true
				}
				var field, msg string
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch k := kv.Key.(*ast.Ident); k.Name {
					case "Field":
						field, _ = str(kv.Value)
					case "Message":
						msg, _ = str(kv.Value)
					}
				}
				if msg != "" {
					if field != "" {
						msg = field + ": " + msg
					}
					out[Sentence(errors.New(msg))] = path
				}
			}
			return true
		})
	}
	if len(out) < 40 {
		t.Fatalf("found only %d platform errors: the scan is broken", len(out))
	}
	return out
}

func walk(n parse.Node, f func(parse.Node)) {
	if l, ok := n.(*parse.ListNode); n == nil || ok && l == nil {
		return
	}
	f(n)
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			walk(c, f)
		}
	case *parse.ActionNode:
		walk(n.Pipe, f)
	case *parse.PipeNode:
		for _, c := range n.Cmds {
			walk(c, f)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walk(a, f)
		}
	case *parse.IfNode:
		walk(n.Pipe, f)
		walk(n.List, f)
		walk(n.ElseList, f)
	case *parse.RangeNode:
		walk(n.Pipe, f)
		walk(n.List, f)
		walk(n.ElseList, f)
	case *parse.WithNode:
		walk(n.Pipe, f)
		walk(n.List, f)
		walk(n.ElseList, f)
	}
}

var (
	tags     = regexp.MustCompile(`<[^>]*>|&[a-z]+;|&#[0-9]+;`)
	actions  = regexp.MustCompile(`(?s)\{\{.*?\}\}`)
	keepWord = map[string]bool{"Latchkey": true, "ID": true, "id": true, "OpenID": true, "Connect": true, "DPoP": true}
)

// untranslated is the words of a template's text outside its markup that
// are not names (Latchkey, DPoP, …).
func untranslated(text string) string {
	var out []string
	for _, w := range strings.FieldsFunc(tags.ReplaceAllString(text, " "), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 'а' && r <= 'я' || r >= 'А' && r <= 'Я')
	}) {
		if !keepWord[w] {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// pageFields are the fields of Page and the views whose fixed texts are
// shown translated.
var pageFields = map[string]bool{"Title": true, "Error": true, "Notice": true, "Heading": true, "Message": true, "Confirm": true}

// goMessages are the fixed texts the page handlers show: string literals
// given to those fields, to ErrorPage and to T, and the values of the
// notices and confirmations tables.
func goMessages(t *testing.T) map[string]string {
	out := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasPrefix(path, "i18n") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		add := func(e ast.Expr) {
			if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && s != "" {
					out[s] = path
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.KeyValueExpr:
				if id, ok := n.Key.(*ast.Ident); ok && pageFields[id.Name] {
					add(n.Value)
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
					switch {
					case sel.Sel.Name == "ErrorPage" && len(n.Args) == 6:
						add(n.Args[3])
						add(n.Args[4])
					case sel.Sel.Name == "T" && len(n.Args) >= 2:
						add(n.Args[1])
					}
				}
				if id, ok := n.Fun.(*ast.Ident); ok && (id.Name == "fail" || id.Name == "refuse" || id.Name == "page") {
					for _, a := range n.Args {
						add(a)
					}
				}
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if (name.Name == "notices" || name.Name == "confirmations") && i < len(n.Values) {
						ast.Inspect(n.Values[i], func(m ast.Node) bool {
							if kv, ok := m.(*ast.KeyValueExpr); ok {
								ast.Inspect(kv.Value, func(v ast.Node) bool {
									if e, ok := v.(ast.Expr); ok {
										add(e)
									}
									return true
								})
								return false
							}
							return true
						})
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

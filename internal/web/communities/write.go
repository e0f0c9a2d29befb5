package communities

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/token"
	"latchkey/internal/web"
)

// Writer is what the write page asks of the platform.
type Writer interface {
	LookupCommunity(ctx context.Context, id int64) (storage.Community, error)
	SendMessage(ctx context.Context, from storage.Token, peer int64, text string, randomID int64, now time.Time) (int64, error)
}

// writeView is the page where any signed-in user writes to a community:
// their message is its bots' message_new, as one sent with messages.send.
type writeView struct {
	Community storage.Community
	Sent      bool
}

// maxMessage is the longest message, as messages.send takes.
const maxMessage = 4096

// writesPerWindow messages per writeWindow may one person send from the
// pages (the API has its per-token limits).
const (
	writesPerWindow = 30
	writeWindow     = 10 * time.Minute
)

// WritePage serves GET and POST /communities/{id}/write.
func (h *Handler) WritePage(w http.ResponseWriter, r *http.Request) {
	var u *storage.User
	if r.Method == http.MethodPost {
		u = h.SignedInPost(w, r)
	} else {
		u = h.RequireUser(w, r)
	}
	if u == nil {
		return
	}
	c, err := h.w.LookupCommunity(r.Context(), communityID(r))
	if !h.Answered(w, r, err) {
		return
	}
	v := writeView{Community: c}
	page := web.Page{Title: "Write to the community", User: u}
	if r.Method == http.MethodPost {
		text := r.PostForm.Get("message")
		if text == "" || len([]rune(text)) > maxMessage {
			page.Error = "Write a message of 1 to 4096 characters."
			h.pages.communityWrite.Render(w, r, http.StatusUnprocessableEntity, page, v)
			return
		}
		ok, _, err := h.writes.Take(r.Context(), "write:"+strconv.FormatInt(u.ID, 10), writesPerWindow)
		if err != nil {
			h.Fail(w, r, err)
			return
		}
		if !ok {
			page.Error = "Too many messages. Try again in a few minutes."
			h.pages.communityWrite.Render(w, r, http.StatusTooManyRequests, page, v)
			return
		}
		from := storage.Token{Kind: token.User, UserID: u.ID}
		if _, err := h.w.SendMessage(r.Context(), from, -c.ID, text, 0, h.Now()); err != nil {
			if platform.KindOf(err) == platform.Invalid {
				page.Error = web.Sentence(err)
				h.pages.communityWrite.Render(w, r, http.StatusUnprocessableEntity, page, v)
				return
			}
			h.Fail(w, r, err)
			return
		}
		http.Redirect(w, r, "/communities/"+strconv.FormatInt(c.ID, 10)+"/write?done=sent", http.StatusSeeOther)
		return
	}
	if r.URL.Query().Get("done") == "sent" {
		page.Notice = "Sent. The community's answer comes to your inbox."
	}
	h.pages.communityWrite.Render(w, r, http.StatusOK, page, v)
}

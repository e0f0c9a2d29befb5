package storagetest

import (
	"testing"
	"time"

	"latchkey/internal/storage"
)

func testCallbackServers(t *testing.T, s storage.Storage) {
	const community = 99
	srv := storage.CallbackServer{CommunityID: community, URL: "https://bot.example/vk", Title: "Bot", SecretSealed: []byte("sealed"),
		CreatorID: 1, Status: storage.CallbackUnconfirmed, APIVersion: "5.199"}
	must(t, s.CreateCallbackServer(ctx(), &srv, t0))
	if srv.ID == 0 {
		t.Fatal("CreateCallbackServer did not set ID")
	}
	list, err := s.CallbackServers(ctx(), community)
	must(t, err)
	if len(list) != 1 || list[0].URL != srv.URL || list[0].Status != storage.CallbackUnconfirmed || len(list[0].Events) != 0 {
		t.Fatalf("CallbackServers = %+v", list)
	}
	// Its confirmation is queued and due at once; one claim at a time.
	due, err := s.NextDeliveries(ctx(), t0, t0.Add(30*time.Second), 10)
	must(t, err)
	if len(due) != 1 || due[0].Type != "confirmation" || due[0].ServerID != srv.ID || due[0].Status != storage.DeliveryPending {
		t.Fatalf("the confirmation due: %+v", due)
	}
	if again, _ := s.NextDeliveries(ctx(), t0, t0.Add(30*time.Second), 10); len(again) != 0 {
		t.Fatalf("a claimed delivery claimed again: %+v", again)
	}
	d := due[0]
	d.Status, d.Attempts, d.UpdatedAt = storage.CallbackOK, 1, t0
	must(t, s.FinishDelivery(ctx(), d))
	if list, _ := s.CallbackServers(ctx(), community); list[0].Status != storage.CallbackOK {
		t.Fatalf("after a delivered confirmation: %s, want ok", list[0].Status)
	}
	updated, err := s.UpdateCallbackServer(ctx(), community, srv.ID, func(c *storage.CallbackServer) error {
		c.Events, c.APIVersion = []string{"message_new"}, "5.131"
		return nil
	})
	must(t, err)
	if len(updated.Events) != 1 || updated.APIVersion != "5.131" {
		t.Fatalf("UpdateCallbackServer = %+v", updated)
	}
	_, err = s.UpdateCallbackServer(ctx(), community+1, srv.ID, func(*storage.CallbackServer) error { return nil })
	wantErr(t, err, storage.ErrNotFound)

	// An event the server takes is queued with it; a failed attempt comes
	// due again at its NextAt.
	e := storage.CommunityEvent{CommunityID: community, Type: "message_new", Object: "{}", CreatedAt: t0.Add(time.Minute)}
	must(t, addEvent(s, &e))
	due, err = s.NextDeliveries(ctx(), t0.Add(time.Minute), t0.Add(2*time.Minute), 10)
	must(t, err)
	if len(due) != 1 || due[0].Type != "message_new" || due[0].Seq != e.Seq {
		t.Fatalf("the event due: %+v", due)
	}
	d = due[0]
	d.Attempts, d.NextAt, d.LastError, d.UpdatedAt = 1, t0.Add(time.Minute+5*time.Second), "answered 500", t0.Add(time.Minute)
	must(t, s.FinishDelivery(ctx(), d))
	if early, _ := s.NextDeliveries(ctx(), t0.Add(time.Minute+4*time.Second), t0.Add(time.Hour), 10); len(early) != 0 {
		t.Fatalf("a retry before it is due: %+v", early)
	}
	retry, err := s.NextDeliveries(ctx(), t0.Add(time.Minute+5*time.Second), t0.Add(time.Hour), 10)
	must(t, err)
	if len(retry) != 1 || retry[0].Attempts != 1 || retry[0].LastError != "answered 500" {
		t.Fatalf("the retry when due: %+v", retry)
	}
	latest, err := s.Deliveries(ctx(), community, 10)
	must(t, err)
	if len(latest) != 2 || latest[0].Type != "message_new" || latest[1].Type != "confirmation" {
		t.Fatalf("Deliveries = %+v, want the event then the confirmation", latest)
	}
	must(t, s.DeleteCallbackServer(ctx(), community, srv.ID))
	if list, _ := s.CallbackServers(ctx(), community); len(list) != 0 {
		t.Fatalf("after DeleteCallbackServer: %+v", list)
	}
	if latest, _ := s.Deliveries(ctx(), community, 10); len(latest) != 0 {
		t.Fatalf("a deleted server's deliveries: %+v", latest)
	}
}

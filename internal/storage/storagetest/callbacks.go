package storagetest

import (
	"slices"
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

func testAppDeliveries(t *testing.T, s storage.Storage) {
	u := newUser(t, s, "alice")
	a := newApp(t, s, u.ID)
	b := newApp(t, s, u.ID)
	srv := storage.CallbackServer{CommunityID: 7, URL: "https://bot.example/vk", Title: "Bot", CreatorID: u.ID, Status: storage.CallbackUnconfirmed, APIVersion: "5.199"}
	must(t, s.CreateCallbackServer(ctx(), &srv, t0))
	must(t, s.QueueDeliveries(ctx(), []storage.Delivery{
		{AppID: a.ID, Type: "logout", URL: "https://a.example/logout", Payload: "token-1", NextAt: t0},
		{AppID: a.ID, Type: "logout", URL: "https://a.example/logout", Payload: "token-2", NextAt: t0},
		{AppID: b.ID, Type: "logout", URL: "https://b.example/logout", Payload: "token-3", NextAt: t0},
	}))
	due, err := s.NextDeliveries(ctx(), t0, t0.Add(time.Minute), 10)
	must(t, err)
	// One per app (token-1 before token-2) and the server's confirmation.
	var payloads []string
	for _, d := range due {
		payloads = append(payloads, d.Payload)
		if d.Payload != "" && (d.URL == "" || d.AppID == 0 || d.ServerID != 0) {
			t.Fatalf("a delivery to an app: %+v", d)
		}
	}
	if len(due) != 3 || !slices.Contains(payloads, "token-1") || !slices.Contains(payloads, "token-3") || slices.Contains(payloads, "token-2") {
		t.Fatalf("claimed %v, want the server's confirmation, token-1 and token-3", payloads)
	}
	for _, d := range due {
		if d.AppID == a.ID {
			d.Status, d.Attempts, d.UpdatedAt = storage.CallbackOK, 1, t0
			must(t, s.FinishDelivery(ctx(), d))
		}
	}
	next, err := s.NextDeliveries(ctx(), t0.Add(2*time.Minute), t0.Add(3*time.Minute), 10)
	must(t, err)
	if len(next) != 3 || !slices.ContainsFunc(next, func(d storage.Delivery) bool { return d.Payload == "token-2" }) {
		t.Fatalf("after token-1 was delivered: %+v", next)
	}
	list, err := s.AppDeliveries(ctx(), a.ID, 10)
	must(t, err)
	if len(list) != 2 || list[0].Payload != "token-2" || list[1].Status != storage.CallbackOK {
		t.Fatalf("AppDeliveries = %+v", list)
	}
	if _, err := s.DeleteApp(ctx(), a.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.AppDeliveries(ctx(), a.ID, 10); len(list) != 0 {
		t.Fatalf("deliveries outlived their app: %+v", list)
	}
}

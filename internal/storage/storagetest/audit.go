package storagetest

import (
	"testing"
	"time"

	"latchkey/internal/storage"
)

func testAudit(t *testing.T, s storage.Storage) {
	for i, action := range []storage.AuditAction{storage.AuditSecretRotate, storage.AuditServiceTokenNew, storage.AuditCommunityTokenNew} {
		e := storage.AuditEvent{At: t0.Add(time.Duration(i) * time.Second), ActorUserID: 1, AppID: 10, Action: action, IP: "192.0.2.9", Detail: "d"}
		if action == storage.AuditCommunityTokenNew {
			e.AppID, e.CommunityID = 0, 20
		}
		must(t, s.AddAudit(ctx(), e))
	}
	es, err := s.ListAudit(ctx(), storage.AuditFilter{AppID: 10})
	must(t, err)
	if len(es) != 2 || es[0].Action != "service_token.new" || es[0].IP != "192.0.2.9" || !es[0].At.Equal(t0.Add(time.Second)) {
		t.Fatalf("ListAudit(app) = %+v", es)
	}
	es, err = s.ListAudit(ctx(), storage.AuditFilter{CommunityID: 20})
	must(t, err)
	if len(es) != 1 || es[0].Action != storage.AuditCommunityTokenNew {
		t.Fatalf("ListAudit(community) = %+v", es)
	}
	es, err = s.ListAudit(ctx(), storage.AuditFilter{Limit: 1})
	must(t, err)
	if len(es) != 1 {
		t.Fatalf("ListAudit(limit 1) = %d events", len(es))
	}
}

package platform_test

import (
	"context"
	"sync"
	"testing"
)

// TestFirstSignaturesMakeOneKey: requests that all need the first
// signing key at once make one key between them, not one each.
func TestFirstSignaturesMakeOneKey(t *testing.T) {
	p, _ := newPlatform(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := p.Signing.Sign(ctx, map[string]any{"sub": "1"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys, err := p.Signing.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d signing keys after the first signatures, want 1: %+v", len(keys), keys)
	}
}

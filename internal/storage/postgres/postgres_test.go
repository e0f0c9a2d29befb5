package postgres_test

import (
	"context"
	"sync"
	"testing"

	"latchkey/internal/storage"
	"latchkey/internal/storage/postgres"
	"latchkey/internal/storage/storagetest"
	"latchkey/internal/testenv"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := postgres.Open(context.Background(), testenv.PostgresDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Nodes starting together must migrate one at a time, and all succeed.
func TestConcurrentMigrations(t *testing.T) {
	dsn := testenv.PostgresDSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

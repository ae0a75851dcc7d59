package image

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// Two Stores on one root stand in for two berth processes: each opens
// meta.db per operation, so neither locks the other out for long.
func TestTwoStoresOneRoot(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	var stores [2]*Store
	for i := range stores {
		s, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[i%2]
			ti, err := tryBuildImage(s, imageOpts{label: fmt.Sprint(i)}, layer("shared", 100), layer(fmt.Sprint(i), 100))
			if err != nil {
				errs <- err
				return
			}
			ref, err := ParseReference(fmt.Sprintf("img%d", i))
			if err != nil {
				errs <- err
				return
			}
			if err := s.Tag(ctx, ref, ti.manifest); err != nil {
				errs <- err
				return
			}
			if _, err := stores[(i+1)%2].Resolve(fmt.Sprintf("img%d", i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := stores[0].List()
	if err != nil || len(list) != 10 {
		t.Fatalf("List = %d images, %v", len(list), err)
	}
	if problems, err := stores[1].Check(ctx); err != nil || len(problems) != 0 {
		t.Errorf("Check = %v, %v", problems, err)
	}
}

func BenchmarkResolve(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ti := buildImage(b, s, imageOpts{}, layer("x", 10))
	if err := s.Tag(context.Background(), mustRef(b, "x"), ti.manifest); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Resolve("x"); err != nil {
			b.Fatal(err)
		}
	}
}

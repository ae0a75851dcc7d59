package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// benchLayer is ~50 MB of tar with ~2,000 files in 40 directories;
// content is half random, half repetitive, so gzip gets a realistic ratio.
func benchLayer(b *testing.B) (plain, blob []byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	t := newTar(b)
	var payload []byte
	for d := range 40 {
		t.dir(fmt.Sprintf("usr/lib/d%02d/", d))
		for f := range 50 {
			n := 1000 + rng.IntN(48000)
			payload = payload[:0]
			for len(payload) < n {
				if rng.IntN(2) == 0 {
					payload = append(payload, []byte(fmt.Sprintf("line %d of some text file\n", rng.IntN(100)))...)
				} else {
					for range 32 {
						payload = append(payload, byte(rng.Uint32()))
					}
				}
			}
			t.file(fmt.Sprintf("usr/lib/d%02d/f%02d.so", d, f), string(payload[:n]))
		}
	}
	plain = t.bytes()
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.DefaultCompression)
	zw.Write(plain)
	zw.Close()
	return plain, out.Bytes()
}

func BenchmarkApplyGzip(b *testing.B) {
	requireRoot(b)
	plain, blob := benchLayer(b)
	dir := b.TempDir()
	s, err := Open(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(plain)))
	b.ReportMetric(float64(len(blob))/float64(len(plain)), "gzip-ratio")
	b.ResetTimer()
	for b.Loop() {
		chain, _, err := s.Apply(ctx, "", bytes.NewReader(blob), LayerDigests{Compressed: dg(blob)})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Remove(ctx, chain); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	os.RemoveAll(dir)
}

package snapshot

// The unpack pipeline runs on two cores:
//
//	producer goroutine: r -> sha256 (compressed digest) -> 1 MiB bufio ->
//	                    gunzip/zstd -> sha256 (diffID) -> chunks
//	consumer (Apply):   chunks -> archive/tar -> files on disk
//
// Chunks travel over a bounded channel with a fixed set of recycled buffers,
// so memory stays at pipeBuffers*pipeChunk however fast the producer is and
// no allocation happens per chunk. The producer reads its input to EOF, even
// past the end of the compressed stream, so that the compressed digest
// covers every byte of the blob.

import (
	"bufio"
	"bytes"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

const (
	pipeChunk   = 256 << 10
	pipeBuffers = 8
	readBufSize = 1 << 20
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// decompressor detects the compression of br by its magic bytes and returns
// a reader of the uncompressed tar plus a function releasing its resources.
func decompressor(br *bufio.Reader) (io.Reader, func(), error) {
	magic, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, nil, err
	}
	switch {
	case bytes.HasPrefix(magic, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: gzip: %w", ErrInvalidLayer, err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, magicZstd):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: zstd: %w", ErrInvalidLayer, err)
		}
		return zr, zr.Close, nil
	case bytes.HasPrefix(magic, magicBzip2), bytes.HasPrefix(magic, magicXz):
		return nil, nil, ErrUnsupportedCompression
	}
	return br, func() {}, nil
}

// chunkPipe hands decompressed data from the producer goroutine to the tar
// reader.
type chunkPipe struct {
	full     chan []byte
	free     chan []byte
	stopped  chan struct{} // closed by the consumer to abort the producer
	finished chan struct{} // closed by the producer when it has returned
	err      error         // producer's error; read only after finished/full closed
	cur      []byte        // unread part of the chunk being consumed
	curBuf   []byte        // that chunk's whole buffer, to recycle
}

// startPipe starts the producer: it reads src (hashing it into diffHash)
// until EOF, then drains rest (the compressed input) so the compressed
// digest sees trailing bytes too.
func startPipe(src io.Reader, diffHash hash.Hash, rest io.Reader, release func()) *chunkPipe {
	p := &chunkPipe{
		full:     make(chan []byte, pipeBuffers),
		free:     make(chan []byte, pipeBuffers),
		stopped:  make(chan struct{}),
		finished: make(chan struct{}),
	}
	for range pipeBuffers {
		p.free <- make([]byte, pipeChunk)
	}
	go p.produce(src, diffHash, rest, release)
	return p
}

func (p *chunkPipe) produce(src io.Reader, diffHash hash.Hash, rest io.Reader, release func()) {
	defer close(p.finished)
	defer close(p.full)
	defer release()
	for {
		var buf []byte
		select {
		case buf = <-p.free:
		case <-p.stopped:
			return
		}
		n, err := io.ReadFull(src, buf)
		if n > 0 {
			diffHash.Write(buf[:n])
			select {
			case p.full <- buf[:n]:
			case <-p.stopped:
				return
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			p.err = err
			return
		}
	}
	if _, err := io.Copy(io.Discard, rest); err != nil {
		p.err = err
	}
}

// Read implements io.Reader for the consumer.
func (p *chunkPipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.curBuf != nil {
			p.free <- p.curBuf[:cap(p.curBuf)]
			p.curBuf = nil
		}
		c, ok := <-p.full
		if !ok {
			if p.err != nil {
				return 0, p.err
			}
			return 0, io.EOF
		}
		p.cur, p.curBuf = c, c
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// stop aborts the producer and waits for it, so that no goroutine touches
// the caller's reader after Apply returns. Idempotent.
func (p *chunkPipe) stop() {
	select {
	case <-p.stopped:
	default:
		close(p.stopped)
	}
	<-p.finished
}

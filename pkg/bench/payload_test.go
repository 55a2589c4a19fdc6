package bench

import (
	"bytes"
	"math"
	"testing"
)

// TestRandomLetters: records of fresh upper-case letters, of the size
// asked (tails included), each letter as often as letters says.
func TestRandomLetters(t *testing.T) {
	for _, size := range []int{1, 7, 8, 13, 512} {
		p := NewRandom(size, 1)
		var counts [26]int
		var prev []byte
		n := 0
		for range 200_000 / size {
			key, v := p.Next()
			if key != nil || len(v) != size {
				t.Fatalf("size %d: key %q, %d bytes", size, key, len(v))
			}
			for _, c := range v {
				if c < 'A' || c > 'Z' {
					t.Fatalf("size %d: byte %q is not an upper-case letter", size, c)
				}
				counts[c-'A']++
				n++
			}
			if size >= 8 && bytes.Equal(v, prev) {
				t.Fatalf("size %d: the same record twice: %q", size, v)
			}
			prev = append(prev[:0], v...)
			p.Release(v)
		}
		// 22 letters have probability 10/256 and 4 have 9/256; allow five
		// standard deviations.
		for i, c := range counts {
			lo := float64(n) * 9 / 256
			sd := math.Sqrt(float64(n) * 10 / 256)
			if float64(c) < lo-5*sd || float64(c) > float64(n)*10/256+5*sd {
				t.Errorf("size %d: %c drawn %d times of %d", size, 'A'+i, c, n)
			}
		}
	}
}

// TestLetters: every byte value maps to the letter 'A' + b·26/256 in every
// position of the word.
func TestLetters(t *testing.T) {
	for b := range 256 {
		for pos := range 8 {
			x := uint64(b) << (8 * pos)
			got := byte(letters(x) >> (8 * pos))
			if want := byte('A' + b*26/256); got != want {
				t.Fatalf("byte %d at %d: %q, want %q", b, pos, got, want)
			}
			for other := range 8 {
				if other != pos && byte(letters(x)>>(8*other)) != 'A' {
					t.Fatalf("byte %d at %d leaks into byte %d", b, pos, other)
				}
			}
		}
	}
}

// BenchmarkRandom is the --record-size 512 payload's cost per record.
func BenchmarkRandom(b *testing.B) {
	p := NewRandom(512, 1)
	for b.Loop() {
		_, v := p.Next()
		p.Release(v)
	}
}

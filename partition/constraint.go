package partition

// This file models the small constraint solver GNU parted uses to place a new
// partition: a region of allowed start sectors, a region of allowed end
// sectors, an alignment (offset + k*grain) for each, and a size range. The
// solver picks the aligned start nearest to the requested start, then the
// aligned end nearest to the requested end. The rules (ties, clamping into a
// range by whole grains) follow parted 3.5 so the chosen sectors are the same.

// span is an inclusive sector range [start, end]; it is empty when end < start.
type span struct{ start, end int64 }

func (s span) contains(x int64) bool { return x >= s.start && x <= s.end }
func (s span) length() int64         { return s.end - s.start + 1 }

// intersect returns the common part of a and b and whether it is non-empty.
func (a span) intersect(b span) (span, bool) {
	r := span{max(a.start, b.start), min(a.end, b.end)}
	return r, r.start <= r.end
}

// alignment describes the sectors offset + k*grain (grain >= 1).
type alignment struct{ offset, grain int64 }

var alignAny = alignment{0, 1}

func newAlignment(offset, grain int64) alignment {
	m := offset % grain
	if m < 0 {
		m += grain
	}
	return alignment{m, grain}
}

func roundDownTo(x, grain int64) int64 { return x - x%grain }
func roundUpTo(x, grain int64) int64 {
	if x%grain != 0 {
		return roundDownTo(x, grain) + grain
	}
	return x
}

// insideByGrains moves x into r by whole grains; -1 if that is impossible.
func (a alignment) insideByGrains(r span, x int64) int64 {
	if x < r.start {
		x += roundUpTo(r.start-x, a.grain)
	}
	if x > r.end {
		x -= roundUpTo(x-r.end, a.grain)
	}
	if !r.contains(x) {
		return -1
	}
	return x
}

func (a alignment) alignUp(r span, x int64) int64 {
	return a.insideByGrains(r, roundUpTo(x-a.offset, a.grain)+a.offset)
}

func (a alignment) alignDown(r span, x int64) int64 {
	return a.insideByGrains(r, roundDownTo(x-a.offset, a.grain)+a.offset)
}

// alignNearest returns the aligned sector in r nearest to x; on a tie the
// lower candidate wins (parted's rule). -1 when there is none.
func (a alignment) alignNearest(r span, x int64) int64 {
	up, down := a.alignUp(r, x), a.alignDown(r, x)
	if up == -1 {
		return down
	}
	if down == -1 {
		return up
	}
	if abs64(x-up) < abs64(x-down) {
		return up
	}
	return down
}

func (a alignment) aligned(x int64) bool {
	return ((x-a.offset)%a.grain+a.grain)%a.grain == 0
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// extendedEuclid returns g, x, y with a*x + b*y = g = gcd(a, b).
func extendedEuclid(a, b int64) (g, x, y int64) {
	if b == 0 {
		return a, 1, 0
	}
	g, x1, y1 := extendedEuclid(b, a%b)
	return g, y1, x1 - (a/b)*y1
}

// intersect returns the alignment satisfied by sectors aligned to both a and
// b (Chinese remainder theorem), and false when no sector is.
func (a alignment) intersect(b alignment) (alignment, bool) {
	if a.grain < b.grain {
		a, b = b, a
	}
	g, x, y := extendedEuclid(a.grain, b.grain)
	if (b.offset-a.offset)%g != 0 {
		return alignment{}, false
	}
	d := (b.offset - a.offset) / g
	off := a.offset + x*d*a.grain
	if off != b.offset-y*d*b.grain {
		return alignment{}, false
	}
	return newAlignment(off, a.grain/g*b.grain), true
}

type constraint struct {
	startAlign, endAlign alignment
	startRange, endRange span
	minSize, maxSize     int64
}

// fromMax is parted's ped_constraint_new_from_max: anything inside r.
func fromMax(r span) *constraint {
	return &constraint{alignAny, alignAny, r, r, 1, r.length()}
}

// intersectConstraints returns nil when a or b is nil or when the ranges or
// alignments have nothing in common.
func intersectConstraints(a, b *constraint) *constraint {
	if a == nil || b == nil {
		return nil
	}
	sa, ok := a.startAlign.intersect(b.startAlign)
	if !ok {
		return nil
	}
	ea, ok := a.endAlign.intersect(b.endAlign)
	if !ok {
		return nil
	}
	sr, ok := a.startRange.intersect(b.startRange)
	if !ok {
		return nil
	}
	er, ok := a.endRange.intersect(b.endRange)
	if !ok {
		return nil
	}
	return &constraint{sa, ea, sr, er, max(a.minSize, b.minSize), min(a.maxSize, b.maxSize)}
}

// solveNearest returns the solution of c nearest to want, on a device of
// length sectors.
func (c *constraint) solveNearest(want span, length int64) (span, bool) {
	if c == nil || c.minSize > c.maxSize {
		return span{}, false
	}
	// Range of starts that leave room for an allowed end.
	firstEnd := c.endAlign.alignDown(c.endRange, c.endRange.start)
	lastEnd := c.endAlign.alignUp(c.endRange, c.endRange.end)
	if firstEnd == -1 || lastEnd == -1 || firstEnd > lastEnd || lastEnd < c.minSize {
		return span{}, false
	}
	minStart := max(firstEnd-c.maxSize+1, 0)
	maxStart := lastEnd - c.minSize + 1
	if maxStart < 0 {
		return span{}, false
	}
	startRange, ok := span{minStart, maxStart}.intersect(c.startRange)
	if !ok {
		return span{}, false
	}
	start := c.startAlign.alignNearest(startRange, want.start)
	if start == -1 {
		return span{}, false
	}
	if start+c.minSize-1 > length-1 {
		return span{}, false
	}
	endRange, ok := span{start + c.minSize - 1, min(start+c.maxSize-1, length-1)}.intersect(c.endRange)
	if !ok {
		return span{}, false
	}
	end := c.endAlign.alignNearest(endRange, want.end)
	if end == -1 || end < start {
		return span{}, false
	}
	return span{start, end}, true
}

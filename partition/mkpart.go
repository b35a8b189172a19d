package partition

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// optimalGrain is the alignment parted uses for image files (and for block
// devices that report no better topology): 1 MiB.
const optimalGrain = 1 << 20

// MakePart adds a partition like
// `parted -s DEV -- mkpart PARTTYPE FSTYPE START END` (parted 3.5, default
// optimal alignment) and writes the table.
//
// partType is "primary" on msdos ("logical" and "extended" are refused as
// not supported yet); on gpt parted uses it as the partition name, and so
// does MakePart (a name with spaces is refused: parted splits it into words
// and fails, so vmdb2 does too). fsType is a parted file-system type (ext2, ext4, fat16,
// fat32, linux-swap, ntfs, xfs, btrfs, …; "" = none); it decides the MBR
// system id or the GPT type GUID. start and end are parted locations: a
// number with a unit (s, B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, %; no unit
// means MB), negative values counting back from the end of the disk ("-1s" is
// the last sector). Inexact units (%, MB, GB, …) allow parted's fuzz of about
// half a unit either way and the partition is snapped to neighbouring
// partitions and to the 1 MiB grid; exact units (s, B, KiB…) are taken as
// given, and an END in KiB/MiB/GiB/TiB means "up to but not including".
func (d *Disk) MakePart(partType, fsType, start, end string) (Partition, error) {
	if d.label == "" {
		return Partition{}, fmt.Errorf("mkpart: %s has no partition table: run mklabel (msdos or gpt) first", d.path)
	}
	name, err := d.partName(partType)
	if err != nil {
		return Partition{}, err
	}
	fs, err := normFSType(fsType)
	if err != nil {
		return Partition{}, fmt.Errorf("mkpart: %w", err)
	}
	ps, err := parsePosition(start, d.sectorSize, d.length)
	if err != nil {
		return Partition{}, fmt.Errorf("mkpart start: %w", err)
	}
	pe, err := parsePosition(end, d.sectorSize, d.length)
	if err != nil {
		return Partition{}, fmt.Errorf("mkpart end: %w", err)
	}
	geom, err := d.placement(ps, pe, start, end)
	if err != nil {
		return Partition{}, fmt.Errorf("mkpart %s %s: %w", start, end, err)
	}
	n, err := d.nextNumber()
	if err != nil {
		return Partition{}, fmt.Errorf("mkpart %s %s: %w", start, end, err)
	}
	p := &Partition{Number: n, StartSector: geom.start, SizeSectors: geom.length()}
	if d.label == "msdos" {
		// parted sets the system id from the fs type, then turns on the lba
		// flag, which turns fat16/fat32 into their LBA variants.
		p.MBRType = mbrTypeForFS(fs, true, false)
	} else {
		p.Name = name
		p.TypeGUID = gptTypeForFS(fs)
		if d.partGUID != nil {
			p.GUID = d.partGUID(n)
		} else {
			p.GUID = DerivedPartitionGUID(d.diskGUID, n)
		}
	}
	d.finish(p)
	old := d.parts
	d.parts = append(append([]*Partition{}, d.parts...), p)
	d.sortParts()
	if err := d.write(); err != nil {
		d.parts = old
		return Partition{}, err
	}
	return *p, nil
}

// partName checks mkpart's first argument: on an msdos label the
// partition type (only primary), on gpt the partition's name (one word,
// as parted reads it), which it returns.
func (d *Disk) partName(partType string) (string, error) {
	if d.label != "msdos" {
		if strings.ContainsAny(partType, " \t\n") {
			// parted splits its arguments into words: "EFI system" becomes
			// the name "EFI" and the file-system type "system", and fails.
			return "", fmt.Errorf("mkpart %q: parted splits a partition name at spaces, so vmdb2 fails with this name; use a name without spaces (e.g. %q)", partType, strings.Join(strings.Fields(partType), "-"))
		}
		return partType, nil
	}
	switch strings.ToLower(strings.TrimSpace(partType)) {
	case "primary":
		return "", nil
	case "logical", "extended":
		return "", fmt.Errorf("mkpart %s: extended and logical msdos partitions are not supported yet; use primary (at most 4) or a gpt label", partType)
	default:
		return "", fmt.Errorf("mkpart %q: on an msdos label the partition type must be primary (logical and extended are not supported yet)", partType)
	}
}

func (d *Disk) nextNumber() (int, error) {
	limit := 4
	if d.label == "gpt" {
		limit = d.gptEntries
	}
	used := map[int]bool{}
	for _, p := range d.parts {
		used[p.Number] = true
	}
	for i := 1; i <= limit; i++ {
		if !used[i] {
			return i, nil
		}
	}
	if d.label == "msdos" {
		return 0, fmt.Errorf("can't create any more partitions: all 4 primary msdos partitions are in use (extended/logical partitions are not supported yet; a gpt label allows 128)")
	}
	return 0, fmt.Errorf("can't create any more partitions: all %d GPT entries are in use", limit)
}

// placement runs parted's mkpart geometry logic and returns the sectors the
// new partition gets.
func (d *Disk) placement(ps, pe position, startText, endText string) (span, error) {
	s, e := ps.sector, pe.sector
	sr, er := ps.fuzz, pe.fuzz
	if s != e && endsWithIECParted(endText) {
		e--
		er = span{er.start - 1, er.end - 1}
	}
	if e < s {
		return span{}, fmt.Errorf("the end (sector %d) is before the start (sector %d)", e, s)
	}
	want := d.snap(span{s, e}, sr, er)

	user := &constraint{alignAny, alignAny, sr, er, 1, d.length}
	grain := max(optimalGrain/d.sectorSize, 1)
	whole := span{0, d.length - 1}
	dev := &constraint{newAlignment(0, grain), newAlignment(-1, grain), whole, whole, 1, d.length}
	if final := intersectConstraints(user, dev); final != nil {
		if got, err := d.add(want, final); err == nil {
			return got, nil
		}
	}
	anyC := &constraint{alignAny, alignAny, whole, whole, 1, d.length}
	got, err := d.add(want, anyC)
	if err != nil {
		return span{}, err
	}
	if !sr.contains(got.start) || !er.contains(got.end) {
		if d.overlapsExisting(span{s, e}) {
			return span{}, d.overlapError(span{s, e})
		}
		return span{}, fmt.Errorf("you requested a partition at %s; the closest location parted can manage is %s%s",
			d.describe(span{s, e}), d.describe(got), d.freeHint())
	}
	return got, nil
}

// endsWithIECParted is parted 3.5's test on END: the last three characters
// are one of k M G T P E Z Y (case as written) followed by "iB" in any case.
func endsWithIECParted(s string) bool {
	s = strings.TrimRight(s, " \t")
	if len(s) < 4 {
		return false
	}
	p := s[len(s)-3:]
	return strings.ContainsRune("kMGTPEZY", rune(p[0])) && strings.EqualFold(p[1:], "iB")
}

func (d *Disk) freeHint() string {
	var parts []string
	for _, p := range d.byStart() {
		parts = append(parts, fmt.Sprintf("partition %d (%s)", p.Number, d.describe(span{p.StartSector, p.EndSector()})))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; existing: " + strings.Join(parts, ", ")
}

func (d *Disk) byStart() []*Partition {
	ps := append([]*Partition{}, d.parts...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].StartSector < ps[j].StartSector })
	return ps
}

// add is ped_disk_add_partition for a partition wanted at want: the free
// space around want.start, the given constraint and the label's own limits.
func (d *Disk) add(want span, c *constraint) (span, error) {
	parts := d.byStart()
	minStart, maxEnd := int64(0), d.length-1
	i := 0
	for i < len(parts) && (parts[i].StartSector < want.start || minStart >= parts[i].StartSector) {
		minStart = parts[i].EndSector() + 1
		i++
	}
	if i < len(parts) {
		maxEnd = parts[i].StartSector - 1
	}
	var overlap *constraint
	if minStart < maxEnd {
		overlap = fromMax(span{minStart, maxEnd})
	}
	cs := intersectConstraints(overlap, c)
	if cs == nil {
		return span{}, d.overlapError(want)
	}
	var labelC *constraint
	if d.label == "msdos" {
		labelC = fromMax(span{1, d.length - 1})
	} else {
		labelC = fromMax(span{d.firstUsable, d.lastUsable})
	}
	got, ok := intersectConstraints(cs, labelC).solveNearest(want, d.length)
	if !ok {
		if d.label == "gpt" && (want.end > d.lastUsable || want.start < d.firstUsable) {
			return span{}, fmt.Errorf("unable to satisfy all constraints on the partition: the usable area of this GPT is sectors %d..%d", d.firstUsable, d.lastUsable)
		}
		return span{}, fmt.Errorf("unable to satisfy all constraints on the partition (requested %s)%s", d.describe(want), d.freeHint())
	}
	for _, p := range parts {
		if got.start <= p.EndSector() && p.StartSector <= got.end {
			return span{}, d.overlapError(want)
		}
	}
	if d.label == "msdos" && (got.start > 0xffffffff || got.length() > 0xffffffff) {
		return span{}, fmt.Errorf("partition %s does not fit an msdos label (start and length must be below 2^32 sectors); use a gpt label", d.describe(got))
	}
	return got, nil
}

func (d *Disk) overlapsExisting(r span) bool {
	for _, p := range d.parts {
		if r.start <= p.EndSector() && p.StartSector <= r.end {
			return true
		}
	}
	return false
}

func (d *Disk) overlapError(want span) error {
	var msgs []string
	for _, p := range d.byStart() {
		if want.start <= p.EndSector() && p.StartSector <= want.end {
			msgs = append(msgs, fmt.Sprintf("partition %d (%s)", p.Number, d.describe(span{p.StartSector, p.EndSector()})))
		}
	}
	if len(msgs) == 0 {
		return errors.New("can't have overlapping partitions: no free space at the requested start" + d.freeHint())
	}
	return fmt.Errorf("the new partition (%s) overlaps %s: start it after the end of the previous partition",
		d.describe(want), strings.Join(msgs, " and "))
}

// regions returns parted's view of the disk as consecutive regions:
// metadata, partitions and free space, covering every sector.
func (d *Disk) regions() []span {
	var used []span
	for _, p := range d.byStart() {
		used = append(used, span{p.StartSector, p.EndSector()})
	}
	var meta []span
	if d.label == "msdos" {
		initEnd := d.sectorsPerTrack - 1
		if len(used) > 0 {
			initEnd = min(initEnd, used[0].start-1)
		}
		if 0 < initEnd && initEnd <= d.length {
			meta = append(meta, span{0, initEnd})
		}
	} else {
		es := d.gptEntriesSectors()
		meta = append(meta, span{0, 1 + es}, span{d.length - 1 - es, d.length - 1})
	}
	all := append(meta, used...)
	sort.Slice(all, func(i, j int) bool { return all[i].start < all[j].start })
	var out []span
	next := int64(0)
	for _, r := range all {
		if r.start > next {
			out = append(out, span{next, r.start - 1})
		}
		out = append(out, r)
		next = max(next, r.end+1)
	}
	if next <= d.length-1 {
		out = append(out, span{next, d.length - 1})
	}
	return out
}

const (
	moveUp   = 1
	moveDown = 2
)

// snap is parted's snap_to_boundaries: move the start and the end, within
// their fuzz, onto the edges of the region (partition, free space or
// metadata) they fall in, preferring the nearer edge.
func (d *Disk) snap(g span, sr, er span) span {
	regs := d.regions()
	at := func(x int64) int {
		for i, r := range regs {
			if r.contains(x) {
				return i
			}
		}
		return -1
	}
	si, ei := at(g.start), at(g.end)
	if si < 0 || ei < 0 {
		return g
	}
	sp, ep := regs[si], regs[ei]
	adjacent := sp.end+1 == ep.start
	sAllow, eAllow := moveUp|moveDown, moveUp|moveDown
	if si == ei {
		sAllow &^= moveUp
		eAllow &^= moveDown
	}
	sWant, sDist := preferSnap(g.start, 0, sr, &sAllow, sp)
	eWant, eDist := preferSnap(g.end, -1, er, &eAllow, ep)
	if adjacent && sWant == moveUp && eWant == moveDown {
		if eDist < sDist {
			sAllow &^= moveUp
			sWant, _ = preferSnap(g.start, 0, sr, &sAllow, sp)
		} else {
			eAllow &^= moveDown
			eWant, _ = preferSnap(g.end, -1, er, &eAllow, ep)
		}
	}
	s, e := g.start, g.end
	switch sWant {
	case moveDown:
		s = sp.start
	case moveUp:
		s = sp.end + 1
	}
	switch eWant {
	case moveDown:
		e = ep.start - 1
	case moveUp:
		e = ep.end
	}
	if e < s {
		return g
	}
	return span{s, e}
}

func preferSnap(s, what int64, r span, allow *int, part span) (move int, dist int64) {
	if *allow&(moveUp|moveDown) == 0 {
		return 0, 0
	}
	var up, down int64 = -1, -1
	if *allow&moveUp != 0 {
		if n := part.end + 1 + what; r.contains(n) {
			up = n - s
		} else {
			*allow &^= moveUp
		}
	}
	if *allow&moveDown != 0 {
		if n := part.start + what; r.contains(n) {
			down = s - n
		} else {
			*allow &^= moveDown
		}
	}
	switch {
	case *allow&moveUp != 0 && *allow&moveDown != 0:
		if down < up || (down == up && what == 0) {
			return moveDown, down
		}
		return moveUp, up
	case *allow&moveUp != 0:
		return moveUp, up
	case *allow&moveDown != 0:
		return moveDown, down
	}
	return 0, 0
}

package lvm

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Label is what a PV's label and header say.
type Label struct {
	UUID    string // dashed
	DevSize int64
	// DataStart is the first data area's offset (pe_start); MDAs are the
	// metadata areas' (offset, size).
	DataStart int64
	MDAs      [][2]int64
}

// maxMetadata bounds the metadata text read from an untrusted image.
const maxMetadata = 16 << 20

// ReadLabel finds and checks the LVM2 label in the first sectors of a PV
// of size bytes read from r.
func ReadLabel(r io.ReaderAt, size int64) (*Label, error) {
	sec := make([]byte, SectorSize)
	for i := int64(0); i < labelScan; i++ {
		if (i+1)*SectorSize > size {
			break
		}
		if _, err := r.ReadAt(sec, i*SectorSize); err != nil {
			return nil, fmt.Errorf("reading sector %d: %w", i, err)
		}
		if string(sec[0:8]) != labelID {
			continue
		}
		if le.Uint64(sec[8:]) != uint64(i) {
			return nil, fmt.Errorf("LVM label in sector %d says it is in sector %d", i, le.Uint64(sec[8:]))
		}
		if got, want := checksum(sec[20:]), le.Uint32(sec[16:]); got != want {
			return nil, fmt.Errorf("LVM label in sector %d: checksum %#x, header says %#x", i, got, want)
		}
		if string(sec[24:32]) != labelType {
			return nil, fmt.Errorf("LVM label of type %q, not %q", sec[24:32], labelType)
		}
		return parsePVHeader(sec, int(le.Uint32(sec[20:])))
	}
	return nil, ErrNoLabel
}

func parsePVHeader(sec []byte, off int) (*Label, error) {
	if off < 32 || off+40 > len(sec) {
		return nil, fmt.Errorf("LVM label: PV header offset %d is outside the sector", off)
	}
	h := sec[off:]
	l := &Label{UUID: dash(string(h[:uuidLen])), DevSize: int64(le.Uint64(h[32:]))}
	p := 40
	// Two lists, each ended by a zero offset: data areas, metadata areas.
	for list := 0; list < 2; list++ {
		for {
			if p+16 > len(h) {
				return nil, fmt.Errorf("LVM PV header: area lists run past the sector")
			}
			o, s := int64(le.Uint64(h[p:])), int64(le.Uint64(h[p+8:]))
			p += 16
			if o == 0 {
				break
			}
			if o < 0 || s < 0 {
				return nil, fmt.Errorf("LVM PV header: area at %d of %d bytes", o, s)
			}
			if list == 0 && l.DataStart == 0 {
				l.DataStart = o
			} else if list == 1 {
				l.MDAs = append(l.MDAs, [2]int64{o, s})
			}
		}
	}
	return l, nil
}

// ReadPV reads the label and the current metadata of the PV of size bytes
// read from r, and returns the VG the metadata describes.
func ReadPV(r io.ReaderAt, size int64) (*Label, *VG, error) {
	l, err := ReadLabel(r, size)
	if err != nil {
		return nil, nil, err
	}
	if len(l.MDAs) == 0 {
		return l, nil, fmt.Errorf("PV %s has no metadata area (pvcreate --metadatacopies 0): read another PV of its VG", l.UUID)
	}
	text, err := readMetadata(r, size, l.MDAs[0])
	if err != nil {
		return l, nil, fmt.Errorf("PV %s: %w", l.UUID, err)
	}
	vg, err := ParseText(text)
	if err != nil {
		return l, nil, fmt.Errorf("PV %s: %w", l.UUID, err)
	}
	return l, vg, nil
}

// readMetadata reads the text the metadata area header points at, which
// may wrap around the area's end (a circular buffer).
func readMetadata(r io.ReaderAt, size int64, mda [2]int64) (string, error) {
	start, area := mda[0], mda[1]
	if start+mdaHeaderSize > size || area < mdaHeaderSize || start+area > size {
		return "", fmt.Errorf("metadata area at %d (%d bytes) is outside the PV", start, area)
	}
	h := make([]byte, mdaHeaderSize)
	if _, err := r.ReadAt(h, start); err != nil {
		return "", fmt.Errorf("reading the metadata area header: %w", err)
	}
	if string(h[4:20]) != mdaMagic {
		return "", fmt.Errorf("metadata area header at %d has not lvm's magic", start)
	}
	if got, want := checksum(h[4:]), le.Uint32(h[0:]); got != want {
		return "", fmt.Errorf("metadata area header at %d: checksum %#x, header says %#x", start, got, want)
	}
	loc := h[40:]
	off, n, sum := int64(le.Uint64(loc[0:])), int64(le.Uint64(loc[8:])), le.Uint32(loc[16:])
	if n == 0 {
		return "", fmt.Errorf("metadata area holds no metadata (a PV not in a VG)")
	}
	if off < mdaHeaderSize || off >= area || n > maxMetadata || n > area-mdaHeaderSize {
		return "", fmt.Errorf("metadata at %d+%d does not fit its %d-byte area", off, n, area)
	}
	buf := make([]byte, n)
	first := min(n, area-off)
	if _, err := r.ReadAt(buf[:first], start+off); err != nil {
		return "", fmt.Errorf("reading the metadata: %w", err)
	}
	if first < n {
		if _, err := r.ReadAt(buf[first:], start+mdaHeaderSize); err != nil {
			return "", fmt.Errorf("reading the metadata: %w", err)
		}
	}
	if got := checksum(buf); got != sum {
		return "", fmt.Errorf("metadata checksum %#x, header says %#x", got, sum)
	}
	return string(bytes.TrimRight(buf, "\x00")), nil
}

// ParseText reads a VG from lvm's metadata text (a metadata area's or a
// vgcfgbackup file's).
func ParseText(text string) (*VG, error) {
	root, err := parseConfig(text)
	if err != nil {
		return nil, err
	}
	var sec *node
	for _, c := range root.Children {
		if c.Section {
			if sec != nil {
				return nil, fmt.Errorf("metadata describes more than one VG (%s, %s)", sec.Name, c.Name)
			}
			sec = c
		}
	}
	if sec == nil {
		return nil, fmt.Errorf("metadata describes no VG")
	}
	vg := &VG{Name: sec.Name}
	if host, err := root.str("creation_host"); err == nil {
		vg.CreationHost = host
	}
	vg.CreationTime, _ = root.num("creation_time")
	vg.Description, _ = root.str("description")
	if err := vg.parseHead(sec); err != nil {
		return nil, err
	}
	if err := vg.parsePVs(sec.child("physical_volumes")); err != nil {
		return nil, err
	}
	if err := vg.parseLVs(sec.child("logical_volumes")); err != nil {
		return nil, err
	}
	return vg, nil
}

func (vg *VG) parseHead(sec *node) error {
	var err error
	if vg.UUID, err = sec.str("id"); err != nil {
		return err
	}
	seq, err := sec.num("seqno")
	if err != nil {
		return err
	}
	vg.Seqno = int(seq)
	es, err := sec.num("extent_size")
	if err != nil {
		return err
	}
	if es == 0 || es > 1<<32 {
		return fmt.Errorf("VG %s: extent size %d sectors", vg.Name, es)
	}
	vg.ExtentSize = es * SectorSize
	return nil
}

func (vg *VG) parsePVs(sec *node) error {
	if sec == nil {
		return fmt.Errorf("VG %s: no physical_volumes", vg.Name)
	}
	for _, c := range sec.Children {
		if !c.Section {
			continue
		}
		pv := PV{Name: c.Name}
		var err error
		if pv.UUID, err = c.str("id"); err != nil {
			return err
		}
		pv.Device, _ = c.str("device")
		ds, err1 := c.num("dev_size")
		ps, err2 := c.num("pe_start")
		pv.PECount, err = c.num("pe_count")
		if err = firstErr(err1, err2, err); err != nil {
			return err
		}
		if ds > 1<<52 || ps > 1<<52 || pv.PECount > 1<<40 {
			return fmt.Errorf("PV %s: sizes out of range", c.Name)
		}
		pv.DevSize, pv.PEStart = ds*SectorSize, ps*SectorSize
		vg.PVs = append(vg.PVs, pv)
	}
	return nil
}

func (vg *VG) parseLVs(sec *node) error {
	if sec == nil {
		return nil
	}
	for _, c := range sec.Children {
		if !c.Section {
			continue
		}
		lv := LV{Name: c.Name}
		lv.UUID, _ = c.str("id")
		lv.CreationHost, _ = c.str("creation_host")
		lv.CreationTime, _ = c.num("creation_time")
		for _, sc := range c.Children {
			if !sc.Section || !strings.HasPrefix(sc.Name, "segment") {
				continue
			}
			seg, err := vg.parseSegment(lv.Name, sc)
			if err != nil {
				return err
			}
			lv.Segments = append(lv.Segments, seg)
		}
		vg.LVs = append(vg.LVs, lv)
	}
	return nil
}

// parseSegment reads a linear segment; other segment types (striped over
// several PVs, thin, raid, ...) are refused: their data is not one range.
func (vg *VG) parseSegment(lv string, sc *node) (Segment, error) {
	var s Segment
	typ, err := sc.str("type")
	if err != nil {
		return s, fmt.Errorf("LV %s: %w", lv, err)
	}
	stripes := sc.child("stripes")
	if typ != "striped" || stripes == nil || len(stripes.Values) != 2 {
		return s, fmt.Errorf("LV %s %s: type %q with %d stripe values; only linear LVs are supported", lv, sc.Name, typ, len(stripesValues(stripes)))
	}
	pvName, ok1 := stripes.Values[0].(string)
	pvExt, ok2 := stripes.Values[1].(int64)
	if !ok1 || !ok2 || pvExt < 0 {
		return s, fmt.Errorf("LV %s %s: bad stripes", lv, sc.Name)
	}
	pv := vg.PV(pvName)
	s.StartExtent, err = sc.num("start_extent")
	if err == nil {
		s.ExtentCount, err = sc.num("extent_count")
	}
	switch {
	case err != nil:
		return s, fmt.Errorf("LV %s: %w", lv, err)
	case pv == nil:
		return s, fmt.Errorf("LV %s %s: unknown PV %q", lv, sc.Name, pvName)
	case pvExt > pv.PECount || s.ExtentCount > pv.PECount-pvExt:
		return s, fmt.Errorf("LV %s %s: extents %d+%d are outside PV %s (%d extents)", lv, sc.Name, pvExt, s.ExtentCount, pvName, pv.PECount)
	}
	s.PV, s.PVExtent = pvName, pvExt
	return s, nil
}

func stripesValues(n *node) []any {
	if n == nil {
		return nil
	}
	return n.Values
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

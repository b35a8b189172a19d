package grub

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/vmdb2-go/vmdb2/stage"
)

// UEFI Secure Boot with Debian's signed boot loaders.
//
// Firmware with Secure Boot enforced only starts binaries signed with a key
// in its db: on PCs that is Microsoft's third-party UEFI CA, which signs
// shim, and shim carries Debian's key, which signs GRUB (a monolithic image
// with its own built-in configuration) and the kernel. An image built by
// grub-mkimage is signed by nobody, so when the target has Debian's signed
// binaries the ESP is laid out as Debian's
//
//	grub-install --uefi-secure-boot --force-extra-removable --no-nvram
//
// does (grub2 2.06-13, patches install-signed, grub-install-extra-removable
// and grub-install-removable-shim), with "debian" as the boot loader id:
//
//	EFI/debian/shimx64.efi   /usr/lib/shim/shimx64.efi.signed            (shim-signed)
//	EFI/debian/grubx64.efi   /usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed
//	EFI/debian/mmx64.efi     /usr/lib/shim/mmx64.efi.signed              if present
//	EFI/debian/fbx64.efi     /usr/lib/shim/fbx64.efi.signed              if present
//	EFI/debian/BOOTX64.CSV   /usr/lib/shim/BOOTX64.CSV                   if present
//	EFI/debian/grub.cfg      finds the filesystem holding /boot/grub, loads grub.cfg there
//	EFI/BOOT/BOOTX64.EFI     shim (the removable-media path firmware boots
//	                         without NVRAM entries)
//	EFI/BOOT/grubx64.efi     signed GRUB, which shim loads from its own directory
//	EFI/BOOT/mmx64.efi       if present
//
// The fallback fbx64.efi is not put into EFI/BOOT: grub-install does that
// only when it also writes NVRAM entries, which --no-nvram turns off (and
// shim started from EFI/BOOT would run the fallback instead of GRUB).
// Debian's signed GRUB has the prefix /EFI/debian built in, so whichever of
// the two paths it is started from, it reads EFI/debian/grub.cfg.
//
// Without a signed shim (signed GRUB only) grub-install puts the signed GRUB
// itself at both EFI/debian/grubx64.efi and EFI/BOOT/BOOTX64.EFI; so does
// [SecureBootLayout]. Without Debian's signed GRUB, [FindSecureBoot]
// reports nothing and the image from [BuildEFI] is used as before.

// SignedEFI holds the signed binaries found in a target tree.
type SignedEFI struct {
	// Suffix is the EFI architecture suffix of the file names: "x64",
	// "ia32", "aa64", "arm".
	Suffix string
	// Grub is Debian's signed, monolithic GRUB image.
	Grub []byte
	// Shim, MokManager and Fallback are shim and its helpers (nil when
	// absent); CSV is shim's BOOT<ARCH>.CSV for the fallback (nil when absent).
	Shim, MokManager, Fallback, CSV []byte
}

// SignedPaths returns where Debian's packages put the signed binaries of
// arch in the target: shim (shim-signed), MokManager and fallback
// (shim-helpers-<arch>-signed), shim's CSV (shim-unsigned) and GRUB
// (grub-efi-<arch>-signed).
func SignedPaths(arch string) (shim, mm, fb, csv, grub string, err error) {
	suffix, platform, err := efiSuffix(arch)
	if err != nil {
		return "", "", "", "", "", err
	}
	return "/usr/lib/shim/shim" + suffix + ".efi.signed",
		"/usr/lib/shim/mm" + suffix + ".efi.signed",
		"/usr/lib/shim/fb" + suffix + ".efi.signed",
		"/usr/lib/shim/BOOT" + strings.ToUpper(suffix) + ".CSV",
		"/usr/lib/grub/" + platform + "-signed/grub" + suffix + ".efi.signed",
		nil
}

// efiSuffix returns the EFI suffix ("x64") and GRUB platform
// ("x86_64-efi") of a Debian architecture.
func efiSuffix(arch string) (suffix, platform string, err error) {
	a, err := EFIArch(arch)
	if err != nil {
		return "", "", err
	}
	return a.EFIName(), a.GrubEFI, nil
}

// FindSecureBoot looks for Debian's signed boot loaders in the target tree
// root (the host path of the root filesystem's stage directory) and
// returns them, or nil when the target has no signed GRUB (then there is
// nothing Secure Boot firmware would start, and the caller installs its own
// image). Paths are resolved inside root: a symbolic link in the target,
// even an absolute one, never leads to a file of the host. A file that
// exists but is not an EFI executable is an error.
func FindSecureBoot(root, arch string) (*SignedEFI, error) {
	shim, mm, fb, csv, grubPath, err := SignedPaths(arch)
	if err != nil {
		return nil, err
	}
	r, err := stage.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("grub: %w", err)
	}
	defer r.Close()
	suffix, _, _ := efiSuffix(arch)
	s := &SignedEFI{Suffix: suffix}
	for _, f := range []struct {
		path string
		dst  *[]byte
		pe   bool
	}{
		{grubPath, &s.Grub, true}, {shim, &s.Shim, true}, {mm, &s.MokManager, true},
		{fb, &s.Fallback, true}, {csv, &s.CSV, false},
	} {
		b, err := readOptional(r, f.path)
		if err != nil {
			return nil, err
		}
		if b != nil && f.pe && !isPE(b) {
			return nil, fmt.Errorf("grub: %s of the target is not an EFI executable", f.path)
		}
		*f.dst = b
	}
	if s.Grub == nil {
		return nil, nil
	}
	return s, nil
}

// maxSigned bounds a signed boot loader's size (Debian's are 1 to 4 MiB).
const maxSigned = 64 << 20

// readOptional reads the regular file p inside r; a missing file (or a
// missing directory on the way, or a dangling link) or something else
// than a regular file (a directory, a FIFO, a device node, which are not
// opened) is nil without error, as grub-install skips what is not a
// regular file.
func readOptional(r *stage.Root, p string) ([]byte, error) {
	b, err := r.ReadRegular(p, maxSigned)
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, stage.ErrNotRegular):
		return nil, nil
	}
	return nil, fmt.Errorf("grub: reading %s of the target: %w", p, err)
}

func isPE(b []byte) bool { return len(b) >= 2 && b[0] == 'M' && b[1] == 'Z' }

// ESPFile is one file to write into the EFI system partition.
type ESPFile struct {
	// Path is the file's path in the ESP, with "/" separators and no
	// leading slash: "EFI/debian/shimx64.efi".
	Path string
	Data []byte
}

// SecureBootConfig is the EFI/debian/grub.cfg that grub-install writes for
// the signed GRUB: find the filesystem holding /boot/grub by UUID (hint:
// its GRUB drive), set the prefix to /boot/grub's path there and load the
// grub.cfg there, which grub-mkconfig wrote.
func SecureBootConfig(l Layout) (string, error) {
	f, dir, err := l.Boot()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("search.fs_uuid %s root %s \nset prefix=($root)'%s'\nconfigfile $prefix/grub.cfg\n",
		f.UUID, f.drive(), dir), nil
}

// SecureBootLayout returns the files grub-install --uefi-secure-boot
// --force-extra-removable --no-nvram puts into the ESP for s (see the
// table above), sorted by path.
func SecureBootLayout(s *SignedEFI, l Layout) ([]ESPFile, error) {
	if s == nil || s.Grub == nil {
		return nil, errors.New("grub: no signed GRUB to install")
	}
	cfg, err := SecureBootConfig(l)
	if err != nil {
		return nil, err
	}
	const vendor, removable = "EFI/debian", "EFI/BOOT"
	up := strings.ToUpper(s.Suffix)
	grubName := "grub" + s.Suffix + ".efi"
	files := map[string][]byte{path.Join(vendor, "grub.cfg"): []byte(cfg)}
	if s.Shim == nil {
		files[path.Join(vendor, grubName)] = s.Grub
		files[path.Join(removable, "BOOT"+up+".EFI")] = s.Grub
	} else {
		files[path.Join(vendor, "shim"+s.Suffix+".efi")] = s.Shim
		files[path.Join(vendor, grubName)] = s.Grub
		files[path.Join(removable, "BOOT"+up+".EFI")] = s.Shim
		files[path.Join(removable, grubName)] = s.Grub
		if s.MokManager != nil {
			files[path.Join(vendor, "mm"+s.Suffix+".efi")] = s.MokManager
			files[path.Join(removable, "mm"+s.Suffix+".efi")] = s.MokManager
		}
		if s.Fallback != nil {
			files[path.Join(vendor, "fb"+s.Suffix+".efi")] = s.Fallback
		}
		if s.CSV != nil {
			files[path.Join(vendor, "BOOT"+up+".CSV")] = s.CSV
		}
	}
	out := make([]ESPFile, 0, len(files))
	for p, b := range files {
		out = append(out, ESPFile{Path: p, Data: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

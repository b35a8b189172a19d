// Package fs builds filesystems from staging directories straight into a
// region of a disk image; each filesystem type lives in its own sub-package.
package fs

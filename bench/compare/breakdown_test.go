package main

import "testing"

func TestBreakdown(t *testing.T) {
	stream := `{"event":"build-start","time":"2026-12-07T11:14:18.000Z","spec":"x.vmdb","steps":3}
{"event":"step-start","time":"2026-12-07T11:14:18.000Z","step":1,"kind":"mkimg"}
{"event":"step-end","time":"2026-12-07T11:14:18.010Z","step":1,"kind":"mkimg","status":"ok","duration":0.01}
{"event":"step-start","time":"2026-12-07T11:14:18.010Z","step":2,"kind":"apt"}
{"event":"command","time":"2026-12-07T11:14:18.010Z","argv":["apt-get","-o","Dpkg::Use-Pty=0","update"]}
{"event":"output","time":"2026-12-07T11:14:19.000Z","text":"Hit: ..."}
{"event":"command","time":"2026-12-07T11:14:21.010Z","argv":["/bin/sh","-c","set -e ...","vmdb2-initramfs"]}
{"event":"command","time":"2026-12-07T11:15:30.010Z","argv":["apt-get","clean"]}
{"event":"step-end","time":"2026-12-07T11:15:30.510Z","step":2,"kind":"apt","status":"ok","duration":72.5}
not json
{"event":"teardown-start","time":"2026-12-07T11:15:30.510Z","step":1,"kind":"mount"}
{"event":"command","time":"2026-12-07T11:15:30.510Z","argv":["/usr/sbin/mke2fs","-F"]}
{"event":"teardown-end","time":"2026-12-07T11:15:33.810Z","step":1,"kind":"mount","status":"ok","duration":3.3}
{"event":"build-end","time":"2026-12-07T11:15:33.900Z","exit":0,"duration":75.9}
`
	want := "steps: apt 72.5, mount teardown 3.3; longest commands: kernel hooks (initramfs) 69.0, mke2fs 3.3, apt-get update 3.0"
	if got := breakdown([]byte(stream)); got != want {
		t.Errorf("breakdown:\n got %s\nwant %s", got, want)
	}
	if got := breakdown(nil); got != "steps: -; longest commands: -" {
		t.Errorf("breakdown of nothing: %s", got)
	}
}

// Package stage owns a build's staging tree: the private directory that stands
// in for every mounted filesystem, confinement of paths to it, the
// user-namespace runner that executes commands inside it, and rootfs tarball
// caching.
package stage

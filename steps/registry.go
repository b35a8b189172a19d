package steps

// DefaultRegistry lists every step kind this program knows: the table that
// decides what a spec step is (see Registry.Match for the rule).
func DefaultRegistry() *Registry {
	return NewRegistry(
		// Test steps.
		echoKind,
		errorKind,
		// Disk image and partitions.
		mkimgKind,
		mklabelKind,
		mkpartKind,
		setPartFlagKind,
		kpartxKind,
		cryptsetupKind,
		luksKind,
		vgcreateKind,
		lvcreateKind,
		lvscanKind,
		// Filesystems and the staging tree.
		mkfsKind,
		mountKind,
		fstabKind,
		createDirKind,
		createFileKind,
		copyFileKind,
		copyDirKind,
		unpackRootfsKind,
		cacheRootfsKind,
		// Inside the target.
		debootstrapKind,
		qemuDebootstrapKind,
		aptKind,
		chrootKind,
		shellKind,
		virtualFilesystemsKind,
		ansibleKind,
		resizeRootfsKind,
		grubKind,
	)
}

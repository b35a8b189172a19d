module github.com/vmdb2-go/vmdb2

go 1.26.0

require (
	github.com/flosch/pongo2/v6 v6.0.0
	github.com/klauspost/compress v1.18.5
	github.com/ulikunitz/xz v0.5.17
	golang.org/x/sys v0.50.0
	gopkg.in/yaml.v3 v3.0.1
)

require golang.org/x/crypto v0.59.0

// Module hack/tools/images builds the operator's container image without a
// Docker engine, with go-containerregistry. It is its own module so that the
// operator's module stays free of image-building dependencies.
module github.com/image-registry-operator/image-registry-operator/hack/tools/images

go 1.26.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
	golang.org/x/sync v0.22.0 // indirect
)

package imageregistry

// What the distribution registry needs so that several replicas can serve
// one storage (S3, or a ReadWriteMany volume) behind one Service, and so
// that a replica can be replaced without failing requests:
//
//   - http.secret is shared: every replica reads the same random value from
//     the <registry>-http-secret Secret (REGISTRY_HTTP_SECRET, secrets.go).
//     It signs the state of blob uploads, so an upload started through one
//     replica continues through another, as a load balancer may send its
//     requests.
//   - Upload purging is explicit: abandoned uploads older than a week are
//     removed every 24 hours, by every replica. Deleting an old upload is
//     idempotent, so several purgers do no harm, and no upload in flight is
//     a week old. (The registry pauses purging in read-only mode, during a
//     garbage collection.)
//   - No blob descriptor cache (storage.cache): a replica's in-memory cache
//     would go on answering for blobs that another replica deleted (manifest
//     deletes and garbage collection are enabled), and a shared cache
//     (Redis) would be one more service to run. Every lookup goes to the
//     storage instead; the S3 numbers in docs/performance.md include that
//     cost.
//   - Blob redirects off (storage.redirect.disable, configmap.go): clients
//     get the data from the registry, under its TLS and tokens, rather than
//     presigned URLs of a storage endpoint they may not reach.
//   - A drain timeout: on SIGTERM (a rolling update, a scale-down) the
//     registry stops accepting connections and finishes the requests it is
//     serving for up to http.draintimeout, instead of cutting them off. It
//     stays under the pod's default 30s termination grace period.

// Upload purging, as distribution's defaults, spelt out.
const (
	uploadPurgeAge      = "168h"
	uploadPurgeInterval = "24h"
	drainTimeout        = "25s"
)

// replicaSettings adds the settings above to a rendered registry config.
func replicaSettings(cfg *registryConfig) {
	maintenance, _ := cfg.Storage["maintenance"].(map[string]any)
	if maintenance == nil {
		maintenance = map[string]any{}
	}
	maintenance["uploadpurging"] = map[string]any{
		"enabled":  true,
		"age":      uploadPurgeAge,
		"interval": uploadPurgeInterval,
		"dryrun":   false,
	}
	cfg.Storage["maintenance"] = maintenance
	cfg.HTTP.DrainTimeout = drainTimeout
}

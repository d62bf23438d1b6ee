// Package imageregistry is the controller that turns an ImageRegistry into a
// running registry (docs/design.md): a StatefulSet of the
// distribution registry with a token server beside it, its Services, the TLS
// and token signing key pairs, the auth and registry configuration, and the
// RBAC the token server needs to read ImageRegistryAccounts.
//
// # Objects, for an ImageRegistry <name> in <ns>
//
//   - StatefulSet <name>: containers "registry" and "auth", PVC template
//     "data" (spec.persistentVolumeClaim, default ReadWriteOnce 8Gi; none with
//     spec.storage.s3), pod template annotation v1alpha1.AnnotationConfigHash.
//   - Service <name> (LoadBalancer, 443->5000 "registry", 5001->5001 "auth",
//     annotated with external-dns's hostname) and Service <name>-headless.
//   - ConfigMaps <name>-registry-config (config.yml) and <name>-auth-config
//     (auth_config.yml; not made when spec.auth.configMapName is set).
//   - Secrets <name>-tls, <name>-auth-token, <name>-http-secret, all labelled
//     app.kubernetes.io/managed-by=image-registry-operator, and the operator CA
//     Secret image-registry-root-ca in the operator namespace (labelled, unowned).
//   - ServiceAccount, Role and RoleBinding <name>-auth: get/list/watch
//     imageregistryaccounts in <ns>, nothing else.
//   - cert-manager Certificates <name>-tls / <name>-auth-token when an
//     issuerRef asks for them.
//
// # Decisions
//
//   - Hostname: <name>.<ns>.<DNSZone>. The token service name is the
//     hostname; the realm is https://<hostname>:5001/auth.
//   - Token issuer: "image-registry-operator/<ns>/<name>". It does not
//     contain the hostname, so changing the DNS zone does not change it. With
//     a user auth ConfigMap, the registry expects that config's token.issuer.
//   - A user auth ConfigMap must keep token.certificate and token.key at
//     /etc/registry-token/tls.crt and tls.key (where the pod mounts the token
//     key pair and where the registry reads its root bundle); otherwise every
//     token would be refused, so it is rejected as InvalidAuthConfig.
//   - Keys are ECDSA P-256. The operator CA is valid 10 years and is not
//     rotated before expiry (replaced only when unusable); serving certificates
//     90 days, token signing certificates 1 year; both are renewed after two
//     thirds of their lifetime by a queue AddAfter timer on the injected
//     clock. A new key pair changes the config hash and so rolls the pods.
//   - Serving certificate names: the hostname, <name>, <name>.<ns>,
//     <name>.<ns>.svc, <name>.<ns>.svc.cluster.local, the pods' names under
//     the headless Service, and localhost (port-forwarding). A certificate
//     from cert-manager holds only the hostname: ACME issuers refuse
//     cluster-internal names.
//   - Secrets the operator cannot watch (a user's spec.tls.secretName or
//     spec.auth.ca.secretName, which carry no managed-by label) are read from
//     the API on each sync and re-read every Options.UserSecretRecheckInterval.
//     An administrator-supplied CA Secret should carry the managed-by label.
//   - Secrets never go into ConfigMaps: http.secret and S3 credentials reach
//     the registry as environment variables from Secrets. Changing the S3
//     credentials Secret does not roll the pods.
//   - With S3 storage the registry serves blobs itself (storage.redirect.disable):
//     clients may not reach the bucket's endpoint.
//   - Probes: the registry answers GET / with 200 without authentication and
//     503 when its storage health check fails, so readiness is HTTPS GET / on
//     5000 and liveness a TCP check (a restart does not heal storage). The
//     builtin token server is probed at HTTPS GET /healthz on 5001,
//     docker_auth (no health endpoint) by TCP on 5001.
//   - Only the auth container gets API credentials: the pod does not automount
//     a token, the auth container mounts a projected one. The registry
//     container mounts the token certificate but not its key.
//   - Drift: the controller compares and repairs only the fields it sets
//     (with semantic equality); fields the API defaults or other controllers
//     set are kept. Immutable fields (StatefulSet selector, serviceName,
//     volumeClaimTemplates; RoleBinding roleRef) are left as created, except
//     a changed roleRef, for which the RoleBinding is recreated. A changed
//     spec.persistentVolumeClaim gives a Warning event: existing claims keep
//     their size anyway.
//   - Bad input ends as Ready=False with an exported Reason* constant, a
//     Warning event of the same reason and a retry with back-off; the sync
//     stops at that step, so objects after it are not touched. Transient API
//     errors are retried without touching the status.
package imageregistry

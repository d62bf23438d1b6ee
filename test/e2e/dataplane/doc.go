// Package dataplane plays the kubelet and the Service proxy for one
// ImageRegistry's pod on the local e2e control plane, which has neither.
//
// A Runner watches the Pods of the StatefulSet the operator generated for
// the registry and, for the pod it finds, does what a kubelet would:
//
//   - binds the pod to framework.NodeName;
//   - materializes every volume of the pod spec: ConfigMap and Secret
//     volumes with their items and modes, emptyDirs, the PersistentVolumeClaim
//     (a directory kept across pod replacements), and projected volumes with a
//     service-account token from the TokenRequest API, ca.crt from the
//     kube-root-ca.crt ConfigMap and the namespace from the downward API;
//   - resolves each container's env (values, secretKeyRef, configMapKeyRef,
//     fieldRef) and adds KUBERNETES_SERVICE_HOST/PORT;
//   - starts each container's command and args as a local process from the
//     binary of the same basename in the bin dir, in a private mount namespace
//     (unshare -m) where every volume is bind-mounted at the container's exact
//     mountPath (read-only where the mount says so), as the pod's runAsUser,
//     runAsGroup and fsGroup (setpriv);
//   - runs a container without a command from its image's entrypoint: the
//     host binary Options.Entrypoints maps the image's repository to
//     (cesanta/docker_auth: $IRO_DOCKER_AUTH_BIN by default), bound into the
//     container's mount namespace and given the container's args;
//   - runs the init containers first, in order, each to completion and
//     in the same way as containers; the containers start only when all of
//     them succeeded. A failed init container is a problem (Runner.Problems)
//     and the pod is tried again after a doubling back-off. A restartable
//     init container (restartPolicy Always, a sidecar) is started in its
//     turn and then runs beside the containers;
//   - reports the pod Ready only while every container answers its readiness
//     probe as declared (HTTP(S) GET or TCP, like the kubelet without TLS
//     verification), and restarts a container whose process exits (counted,
//     see Runner.Restarts);
//   - stops the processes and force-deletes the pod when it is deleted (the
//     StatefulSet controller replaces a pod when the template's config hash
//     changes; the replacement is then started from its own spec).
//
// Nothing of the configuration is written a second time: what runs is what
// the operator generated, so a bug there fails the tests.
//
// The Runner also plays the LoadBalancer Service <name>: on a per-run
// loopback address (127.x.y.z) it forwards each Service port to its
// targetPort on 127.0.0.1. A port equal to its targetPort (the token server's
// 5001) needs no forwarder, since the process listens on all addresses, and
// must not get one, since a specific-address listener would keep the process
// from binding its wildcard address on restart. Clients resolve the
// registry's hostname to that address through a hosts file (Runner.HostsFile),
// bind-mounted over /etc/hosts in their own mount namespace (see Client).
//
// The registry's processes listen on fixed ports (5000, 5001) on all
// addresses, as in the pod, so only one Runner may run on a machine at a
// time: tests that use it must not run in parallel.
//
// Requirements: Linux, root, util-linux (unshare, mount, setpriv), and the
// kube-root-ca.crt ConfigMap (kube-controller-manager's
// root-ca-certificate-publisher-controller).
package dataplane

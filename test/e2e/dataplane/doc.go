// Package dataplane plays the kubelet and the Service proxy for one
// ImageRegistry's pod on the local e2e control plane, which has neither.
//
// A Runner watches the Pods of the StatefulSet the operator generated for
// the registry and, for every pod it finds (all replicas), does what a
// kubelet would:
//
//   - binds the pod to framework.NodeName;
//   - materializes every volume of the pod spec: ConfigMap and Secret
//     volumes with their items and modes, emptyDirs, the PersistentVolumeClaim
//     (a directory kept across pod replacements), and projected volumes with a
//     service-account token from the TokenRequest API, ca.crt from the
//     kube-root-ca.crt ConfigMap and the namespace from the downward API;
//   - resolves each container's env (values, secretKeyRef, configMapKeyRef,
//     fieldRef) and adds KUBERNETES_SERVICE_HOST/PORT;
//   - gives the pod a network namespace of its own (what a CNI plugin
//     would), with only a loopback interface, so that the replicas of a
//     StatefulSet all listen on the same fixed ports (5000, 5001, ...) on one
//     machine; the runner reaches a pod by opening its sockets inside that
//     namespace, and the pod reaches the API server and Options.HostServices
//     (an S3 server) at their host addresses through forwarders the runner
//     listens with inside it;
//   - starts each container's command and args as a local process from the
//     binary of the same basename in the bin dir, in the pod's network
//     namespace (nsenter) and a private mount namespace
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
// It also runs the registry's one-shot pods (restartPolicy Never, controlled
// by the ImageRegistry: the garbage collector) to completion, in the host's
// network, with the same PVC directory, and reports their phase, exit codes
// and termination messages (oneshot.go); Options.BeforeOneShot lets a test
// hold or fail such a pod. A container command "sh" that the bin dir lacks
// is the host's /bin/sh, as an image's shell.
//
// Nothing of the configuration is written a second time: what runs is what
// the operator generated, so a bug there fails the tests.
//
// The Runner also plays the LoadBalancer Service <name>: on a per-run
// loopback address (127.x.y.z) it forwards each Service port to its
// targetPort on one of the Ready pods, round robin per connection (as
// kube-proxy's IPVS mode; its iptables mode picks at random). A pod leaves
// the set as soon as a probe fails, its processes are killed (KillPod) or it
// is deleted; it is never sent new connections while it is not Ready.
// Clients resolve the registry's hostname to that address through a hosts
// file (Runner.HostsFile), bind-mounted over /etc/hosts in their own mount
// namespace (see Client). PodClient gives a client that reaches one pod
// only, as kubectl port-forward would, to push through one replica and pull
// through another.
//
// Since each pod has its own network namespace, nothing of a pod listens on
// the host, and runners of different registries do not collide; tests
// still run one at a time (the e2e suite's lock) to keep the machine quiet.
//
// Requirements: Linux, root, util-linux (unshare, nsenter, mount, setpriv), and the
// kube-root-ca.crt ConfigMap (kube-controller-manager's
// root-ca-certificate-publisher-controller).
package dataplane

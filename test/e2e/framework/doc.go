// Package framework runs a real, local Kubernetes control plane for the e2e
// tests: etcd, kube-apiserver and kube-controller-manager, built from pinned
// sources by hack/build-tools.sh, listening on 127.0.0.1 on free ports.
//
// There is no kubelet, scheduler or network: objects are stored, admitted,
// garbage-collected and reconciled by the real controllers, but Pods stay
// Pending. That is enough to test an operator's API behaviour end to end.
package framework

"""A real control plane (etcd, kube-apiserver, controller manager, scheduler, kwok) for e2e tests."""

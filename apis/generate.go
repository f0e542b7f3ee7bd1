// Package apis holds the Kalypso APIs: Go types in v1alpha1 and, generated
// from them by `make generate`, the XRDs and Compositions of every kind.
package apis

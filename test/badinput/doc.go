// Package badinput holds the bad-input catalogue: what users write wrong in
// the three Kalypso kinds, the function's Input and the kalypso-defaults
// EnvironmentConfig, who catches it (the XRD's schema or CEL rules at the API
// server, the function, or the function's gRPC server) and what they say.
//
// The catalogue is the table in catalogue_test.go; every row is a test, and
// README.md is generated from the same table:
//
//	go test ./test/badinput            # runs every row; fails when README.md is stale
//	go test ./test/badinput -update    # rewrites README.md
package badinput

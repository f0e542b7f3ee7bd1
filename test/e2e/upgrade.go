//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

// previousFunction is the function binary of the last release (make e2e
// builds it from that commit: FUNCTION_PREVIOUS in e2e.mk).
func previousFunction() (string, error) {
	bin := os.Getenv("E2E_FUNCTION_PREVIOUS")
	if bin == "" {
		return "", fmt.Errorf("E2E_FUNCTION_PREVIOUS is unset: run the lab with make e2e")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", err
	}
	return bin, nil
}

// useFunction restarts the function from another binary with the same
// arguments (so the same address and certificates): an upgrade or a
// rollback of the Function package as core sees it.
func (l *Lab) useFunction(ctx context.Context, bin string) error {
	old, err := l.stopComponent("function", syscall.SIGTERM, 5*time.Second)
	if err != nil {
		return err
	}
	p, err := l.start(old.name, bin, old.args, old.env...)
	if err != nil {
		return err
	}
	return waitTCP(p, functionAddr, 30*time.Second)
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one function process this program started on loopback.
type server struct {
	addr string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done

	mu      sync.Mutex
	stopped bool
}

// running tracks every process started, so that they are all killed on the
// way out whatever happens.
var running struct {
	sync.Mutex
	servers []*server
}

// startServer starts the function binary on 127.0.0.1 with a free port:
// --insecure, or mTLS with tlsDir as --tls-server-certs-dir. Its metrics
// server (and so the gRPC metrics interceptor) stays on, on a free
// loopback port. It returns once the port accepts connections.
func startServer(ctx context.Context, bin, tlsDir, logDir string, index int) (*server, error) {
	var lastErr error
	for attempt := range 3 { // a free port can be taken between probe and bind
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &server{addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{}),
			log: filepath.Join(logDir, fmt.Sprintf("function-%d-%d.log", index, attempt))}
		args := []string{"--address=" + s.addr, "--metrics-address=127.0.0.1:0"}
		if tlsDir == "" {
			args = append(args, "--insecure")
		} else {
			args = append(args, "--tls-server-certs-dir="+tlsDir)
		}
		logf, err := os.Create(s.log)
		if err != nil {
			return nil, err
		}
		s.cmd = exec.Command(bin, args...)
		s.cmd.Stdout, s.cmd.Stderr = logf, logf
		// Killed with this program even if it dies without cleaning up.
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			logf.Close()
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		running.Lock()
		running.servers = append(running.servers, s)
		running.Unlock()
		go func() {
			s.err = s.cmd.Wait()
			logf.Close()
			close(s.done)
		}()
		if err := s.waitListening(ctx, 10*time.Second); err != nil {
			s.stop()
			lastErr = fmt.Errorf("%w\n%s", err, tail(s.log, 20))
			continue
		}
		return s, nil
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls the port, at most for timeout.
func (s *server) waitListening(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("the function exited before listening: %v", s.err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the function did not listen on %s within %s", s.addr, timeout)
}

// stop ends the process: SIGTERM, then SIGKILL after 3 s.
func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.cmd.Process == nil {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// stopAll stops every process started.
func stopAll() {
	running.Lock()
	defer running.Unlock()
	for _, s := range running.servers {
		s.stop()
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// memory reads VmRSS and VmHWM (peak RSS) of a process, in KiB.
func memory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			hwm, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return rss, hwm, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on every
// Linux architecture Go supports).
const clockTicks = 100

// cpu reads the user+system CPU time of a process.
func cpu(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// selfCPU is this program's own CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

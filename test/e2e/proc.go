//go:build e2e

package e2e

import (
	"bufio"
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

// proc is one lab component: a process in its own process group, its
// output in <logDir>/<name>.log.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // set when done is closed

	mu      sync.Mutex
	peakRSS int64 // kB, last VmHWM read before the process ended
}

// startProc starts bin with args. The process gets its own process group
// (so stopping it stops anything it spawned) and is killed if the test
// binary dies (Pdeathsig), so a panic or a test timeout leaves no orphan.
// A restarted component appends to the log of its previous run.
func startProc(logDir, name, bin string, args []string, env []string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "# %s %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, bin: bin, args: args, env: env, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	go p.sampleRSS()
	return p, nil
}

// sampleRSS keeps the process's peak RSS (VmHWM) while it runs: /proc is
// gone once it exits.
func (p *proc) sampleRSS() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		p.readRSS()
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

func (p *proc) readRSS() {
	if kb, ok := p.vmHWM(); ok {
		p.mu.Lock()
		p.peakRSS = max(p.peakRSS, kb)
		p.mu.Unlock()
	}
}

// vmHWM reads the process's peak RSS in kB (since it started, or since
// resetPeakRSS).
func (p *proc) vmHWM() (int64, bool) { return p.statusKB("VmHWM") }

// statusKB reads a kB field of /proc/<pid>/status (VmRSS, VmHWM).
func (p *proc) statusKB(field string) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, false
	}
	s := bufio.NewScanner(strings.NewReader(string(b)))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb, err == nil
		}
	}
	return 0, false
}

// resetPeakRSS starts VmHWM again from the current RSS (proc(5),
// clear_refs); PeakRSSMB keeps the highest value seen before.
func (p *proc) resetPeakRSS() error {
	p.readRSS()
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports (Go cannot call sysconf without cgo).
const clockTicks = 100

// cpuSeconds is the CPU time (user plus system) the process has used.
func (p *proc) cpuSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces: count from its ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", p.cmd.Process.Pid)
	}
	utime, err := strconv.ParseFloat(f[11], 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseFloat(f[12], 64)
	if err != nil {
		return 0, err
	}
	return (utime + stime) / clockTicks, nil
}

// PeakRSSMB is the highest resident set size seen, in MB.
func (p *proc) PeakRSSMB() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakRSS / 1024
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if done, _ := p.exited(); done {
		return
	}
	p.readRSS()
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	// Anything left in the group (a child that ignored SIGTERM).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// kill sends sig to the process group and waits until the process ended.
func (p *proc) kill(sig syscall.Signal, grace time.Duration) {
	if done, _ := p.exited(); done {
		return
	}
	p.readRSS()
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct free TCP ports on loopback. The listeners
// stay open until all ports are picked so no port is handed out twice.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(p *proc, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if done, err := p.exited(); done {
			return fmt.Errorf("%s exited (%v) before listening on %s:\n%s", p.name, err, addr, p.tail(30))
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New(p.name + " did not listen on " + addr + " in " + timeout.String() + ":\n" + p.tail(30))
}

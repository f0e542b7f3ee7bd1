package tritonserver

import (
	"maps"

	"github.com/kalypsoserving/function-kalypso/fn/compose"
)

// withDefaultClass changes the platform's default GPU class, on a copy of
// its catalogue.
func withDefaultClass(p compose.Platform, change func(*compose.GPUClass)) compose.Platform {
	p.GPUClasses = maps.Clone(p.GPUClasses)
	c := p.DefaultGPU()
	change(&c)
	p.GPUClasses[p.DefaultGPUClass] = c
	return p
}

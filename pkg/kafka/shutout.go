package kafka

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrShutOut marks a member that its group refused for a reason that
// rejoining cannot fix.
var ErrShutOut = errors.New("shut out of the group")

// ErrSettingRefused marks a setting of the member that the broker refuses:
// the invocation must change.
var ErrSettingRefused = errors.New("refused by the broker")

// shutOutHook passes on the group errors that end a member for good.
// franz-go treats them as any other group error and rejoins, refused again,
// for as long as the process lives; Kafka's Java consumer raises them to
// the application.
type shutOutHook struct{ opts GroupOptions }

func (h shutOutHook) OnGroupManageError(err error) {
	if e := shutOutError(h.opts, err); e != nil {
		h.opts.ShutOut(e)
	}
}

// shutOutError says why the group refused the member and what to do, or
// returns nil for an error that rejoining may fix.
func shutOutError(opts GroupOptions, err error) error {
	g := opts.Group
	switch {
	case errors.Is(err, kerr.FencedInstanceID):
		// Restarting this one would shut the other out in turn.
		return fmt.Errorf("%w: group %s: another consumer joined with instance id %q (%w); "+
			"give each consumer its own --instance-id", ErrShutOut, g, opts.InstanceID, err)
	case errors.Is(err, kerr.InvalidSessionTimeout):
		return fmt.Errorf("%w: group %s: session-timeout %s %w: it must lie between the broker's "+
			"group.min.session.timeout.ms and group.max.session.timeout.ms (6s and 30m unless changed)",
			ErrShutOut, g, opts.SessionTimeout, ErrSettingRefused)
	case errors.Is(err, kerr.InconsistentGroupProtocol):
		return fmt.Errorf("%w: group %s is in use by another application with another partition assignment "+
			"protocol (%w); give foodpipe a --group of its own", ErrShutOut, g, err)
	case errors.Is(err, kerr.GroupMaxSizeReached):
		return fmt.Errorf("%w: group %s already has as many members as the broker's group.max.size allows (%w)",
			ErrShutOut, g, err)
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Errorf("%w: group %s: not authorized (%w); the broker's ACLs must allow this principal "+
			"READ on the group", ErrShutOut, g, err)
	}
	return nil
}

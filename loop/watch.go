package loop

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Watch registers fd (level-triggered, EPOLLIN) and calls fn on the loop's
// thread with the epoll events whenever it is readable. The worker's control
// socket is served this way. The caller keeps ownership of fd; Unwatch before
// closing it. Call before Run or on the loop thread.
func (l *Loop) Watch(fd int, fn func(events uint32)) error {
	if err := epollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd,
		&unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd), Pad: tagWatch}); err != nil {
		return fmt.Errorf("loop: watch fd %d: %w", fd, err)
	}
	l.watches[fd] = fn
	return nil
}

// Unwatch removes a fd registered with Watch.
func (l *Loop) Unwatch(fd int) error {
	if _, ok := l.watches[fd]; !ok {
		return nil
	}
	delete(l.watches, fd)
	return epollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

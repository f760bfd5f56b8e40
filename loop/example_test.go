package loop_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"

	"github.com/prefork/prefork/loop"
	"github.com/prefork/prefork/reuseport"
)

// upper is a line protocol: each line comes back in upper case; "quit" ends
// the session. It keeps no per-connection state: an incomplete line stays
// unconsumed and the loop hands it back with the next input.
type upper struct{}

func (upper) OnOpen(c *loop.Conn) { _, _ = c.Write([]byte("hello\n")) }

func (upper) OnData(c *loop.Conn, in []byte) int {
	consumed := 0
	for {
		i := bytes.IndexByte(in[consumed:], '\n')
		if i < 0 {
			return consumed // wait for the rest of the line
		}
		line := in[consumed : consumed+i]
		consumed += i + 1
		if string(line) == "quit" {
			_, _ = c.Write([]byte("bye\n"))
			c.Close(loop.ReasonLocal) // after the flush
			return len(in)
		}
		_, _ = c.Write(append(bytes.ToUpper(line), '\n'))
	}
}

func (upper) OnClose(*loop.Conn, loop.CloseReason) {}

// A protocol is a loop.Handler. Give it to a loop with a listener and run the
// loop; `prefork` does the same in every worker. To serve a handler of your
// own under the prefork CLI, call app.Main from main (package
// github.com/prefork/prefork/app; see the README):
//
//	app.Main(app.Protocol{Name: "upper", New: func(wire.Settings) loop.Handler { return upper{} }})
func ExampleHandler() {
	fd, err := reuseport.Listen("127.0.0.1:0", reuseport.Options{})
	if err != nil {
		panic(err)
	}
	addr, _ := reuseport.BoundAddr(fd)
	l, err := loop.New(loop.Config{Handler: upper{}})
	if err != nil {
		panic(err)
	}
	if err := l.AddListener(fd, false); err != nil {
		panic(err)
	}
	go func() { _ = l.Run() }()
	defer func() { l.Stop(); <-l.Done() }()

	c, err := net.Dial("tcp", addr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Fprint(c, "abc\nprefork\nqu")
	fmt.Fprint(c, "it\n")
	s := bufio.NewScanner(c)
	for s.Scan() {
		fmt.Println(s.Text())
	}
	// Output:
	// hello
	// ABC
	// PREFORK
	// bye
}

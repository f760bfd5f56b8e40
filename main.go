// Command prefork is a pre-fork server: a master that opens the listening
// sockets and supervises worker processes, each running one epoll loop.
// Run `prefork serve --help`.
package main

import "github.com/prefork/prefork/app"

func main() { app.Main() }

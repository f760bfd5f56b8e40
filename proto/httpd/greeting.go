package httpd

// Greeting is the built-in handler of `prefork serve --proto http`: every
// request, whatever its method and target, gets 200, text/plain,
// "Hello, World!". It is a handler of the native API like any other.
func Greeting() Handler { return greeting{} }

type greeting struct{}

var textPlain = MustField("Content-Type", "text/plain")

func (greeting) Serve(c *Ctx) {
	c.AddField(textPlain)
	_, _ = c.WriteString(Body)
}

package loop

const (
	bufFreeMax = 256      // buffers kept on the free list
	bufKeepMax = 64 << 10 // buffers larger than this go back to the GC
	bufMin     = 4 << 10
)

func (l *Loop) getBuf(n int) []byte {
	if k := len(l.bufFree); k > 0 && n <= bufKeepMax {
		b := l.bufFree[k-1]
		l.bufFree[k-1] = nil
		l.bufFree = l.bufFree[:k-1]
		return b
	}
	return make([]byte, 0, max(n, bufMin))
}

func (l *Loop) putBuf(b []byte) {
	if b == nil || cap(b) > bufKeepMax || len(l.bufFree) >= bufFreeMax {
		return
	}
	l.bufFree = append(l.bufFree, b[:0])
}

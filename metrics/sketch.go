package metrics

// spaceSaving is the Space-Saving heavy-hitters summary (Metwally et al.,
// 2005): at most capacity counters; a new key takes over the smallest
// counter and inherits its count. Any key seen more than N/capacity times
// is kept, and a kept key's count overestimates its true count by at most
// its err. A min-heap over counts makes each add O(log capacity).
type spaceSaving[K comparable] struct {
	capacity int
	index    map[K]*ssEntry[K]
	heap     []*ssEntry[K] // min-heap by count
}

type ssEntry[K comparable] struct {
	key       K
	count     uint64
	err       uint64 // count inherited from the evicted key
	monitored uint64 // part of count from monitor-mode matches
	pos       int
}

func newSpaceSaving[K comparable](capacity int) *spaceSaving[K] {
	return &spaceSaving[K]{capacity: capacity, index: make(map[K]*ssEntry[K])}
}

func (s *spaceSaving[K]) len() int { return len(s.heap) }

func (s *spaceSaving[K]) add(key K, monitored bool) {
	e, ok := s.index[key]
	switch {
	case ok:
		e.count++
	case len(s.heap) < s.capacity:
		e = &ssEntry[K]{key: key, count: 1, pos: len(s.heap)}
		s.heap = append(s.heap, e)
		s.index[key] = e
		s.up(e.pos)
	default:
		e = s.heap[0]
		delete(s.index, e.key)
		e.key, e.err, e.monitored = key, e.count, 0
		e.count++
		s.index[key] = e
	}
	if monitored {
		e.monitored++
	}
	s.down(e.pos)
}

func (s *spaceSaving[K]) less(i, j int) bool { return s.heap[i].count < s.heap[j].count }

func (s *spaceSaving[K]) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.heap[i].pos, s.heap[j].pos = i, j
}

func (s *spaceSaving[K]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *spaceSaving[K]) down(i int) {
	n := len(s.heap)
	for {
		l, smallest := 2*i+1, i
		if l < n && s.less(l, smallest) {
			smallest = l
		}
		if r := l + 1; r < n && s.less(r, smallest) {
			smallest = r
		}
		if smallest == i {
			return
		}
		s.swap(i, smallest)
		i = smallest
	}
}

package blocklist

// profileIDs holds one profile id per table slot, a byte each until an id
// needs more.
type profileIDs struct {
	narrow []uint8
	wide   []uint32 // replaces narrow once an id exceeds 255
}

func newProfileIDs(n int) profileIDs { return profileIDs{narrow: make([]uint8, n)} }

func (p *profileIDs) get(i uint64) uint32 {
	if p.wide != nil {
		return p.wide[i]
	}
	return uint32(p.narrow[i])
}

func (p *profileIDs) set(i uint64, id uint32) {
	if p.wide == nil && id > 0xff {
		p.wide = make([]uint32, len(p.narrow))
		for j, v := range p.narrow {
			p.wide[j] = uint32(v)
		}
		p.narrow = nil
	}
	if p.wide != nil {
		p.wide[i] = id
		return
	}
	p.narrow[i] = uint8(id)
}

func (p *profileIDs) len() int { return max(len(p.narrow), len(p.wide)) }

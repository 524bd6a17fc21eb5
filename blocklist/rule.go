package blocklist

// RuleKind says whether a rule blocks or excepts the names it covers.
type RuleKind uint8

const (
	KindBlock RuleKind = iota
	KindAllow          // adblock "@@||name^", RPZ "rpz-passthru."
)

// Rule is one parsed list entry.
type Rule struct {
	Name      string // lower-case, punycode, no trailing dot
	OnlyBelow bool   // "*.name": names under Name, not Name itself
	Kind      RuleKind
	Answer    RuleAnswer // RPZ action, else AnswerDefault
	Line      int        // 1-based line in the source
}

// Rejected is a line that could not be used, kept for reporting.
type Rejected struct {
	Line   int
	Text   string // the line, cut to a readable length
	Reason string
}

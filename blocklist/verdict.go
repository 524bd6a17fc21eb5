package blocklist

// Action is what policy decides for one name and client.
type Action uint8

const (
	Allow   Action = iota // resolve normally
	Block                 // answer with the configured blocked answer
	Monitor               // resolve normally, but count and audit as "would block"
	Refuse                // answer REFUSED: an unknown device token under unknown_token: refuse
)

// RuleAnswer is an answer a rule asks for itself (RPZ actions); AnswerDefault
// means "use the configured blocking answer".
type RuleAnswer uint8

const (
	AnswerDefault  RuleAnswer = iota
	AnswerNXDomain            // RPZ "CNAME ."
	AnswerNoData              // RPZ "CNAME *."
)

// Verdict is the policy decision for one query. It is returned by value and
// its strings point into the immutable snapshot, so deciding never allocates.
type Verdict struct {
	Action Action
	Answer RuleAnswer
	Group  string // the client's group
	List   string // the list whose rule decided (block, monitor, or allow exception)
	Rule   string // the matching rule, e.g. "tiktok.com" (covers the name and below)
	// By says which identity chose the group; TokenID names the device
	// token (TokenID form, never the token) when By is ByToken.
	By      IdentityKind
	TokenID string
}

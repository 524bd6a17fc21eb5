package main

import (
	"crypto/sha1"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
)

// profileNamespace makes the profile's UUIDs name-based (RFC 9562 v5):
// the same server and group give the same UUIDs on every run, so an MDM
// that pushes a profile with a rotated token replaces the old one rather
// than adding a second. The token is left out of them for that reason.
var profileNamespace = [16]byte{0x6b, 0x1d, 0x5e, 0x0a, 0x3c, 0x7f, 0x4b, 0x8e, 0x9a, 0x21, 0x4d, 0x0c, 0x8f, 0x52, 0xe3, 0x17}

func profileUUID(parts ...string) string {
	h := sha1.New()
	h.Write(profileNamespace[:])
	h.Write([]byte(strings.Join(parts, "\x00")))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]))
}

// mobileconfig is an unsigned Apple configuration profile with one
// com.apple.dnsSettings.managed payload: DoH to url, whose path carries
// the group's token. Sign it with openssl smime (docs/devices.md) or let
// the MDM sign it.
func (p *profile) mobileconfig(url string) string {
	labels := strings.Split(p.serverName, ".")
	slices.Reverse(labels)
	ident := strings.Join(labels, ".") + ".dnsward." + p.group
	org := p.org
	if org == "" {
		org = p.serverName
	}
	display := "Encrypted DNS (" + p.group + ")"
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>DNSSettings</key>
			<dict>
				<key>DNSProtocol</key>
				<string>HTTPS</string>
`)
	plistString(&b, 4, "ServerURL", url)
	plistString(&b, 4, "ServerName", p.serverName)
	b.WriteString("\t\t\t</dict>\n")
	plistString(&b, 3, "PayloadDescription", "Sends DNS queries to "+p.serverName+" over HTTPS with "+p.tokenNote()+"; policy of group "+p.group+".")
	plistString(&b, 3, "PayloadDisplayName", display)
	plistString(&b, 3, "PayloadIdentifier", ident+".dns")
	plistString(&b, 3, "PayloadType", "com.apple.dnsSettings.managed")
	plistString(&b, 3, "PayloadUUID", profileUUID(p.serverName, p.group, "dnsSettings"))
	b.WriteString("\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n")
	// Supervised devices then cannot switch the setting off (ignored elsewhere).
	b.WriteString("\t\t\t<key>ProhibitDisablement</key>\n\t\t\t<true/>\n")
	b.WriteString("\t\t</dict>\n\t</array>\n")
	plistString(&b, 1, "PayloadDescription", "dnsward encrypted DNS for group "+p.group+" ("+p.tokenNote()+").")
	plistString(&b, 1, "PayloadDisplayName", display)
	plistString(&b, 1, "PayloadIdentifier", ident)
	plistString(&b, 1, "PayloadOrganization", org)
	b.WriteString("\t<key>PayloadRemovalDisallowed</key>\n\t<true/>\n")
	plistString(&b, 1, "PayloadScope", "System")
	plistString(&b, 1, "PayloadType", "Configuration")
	plistString(&b, 1, "PayloadUUID", profileUUID(p.serverName, p.group, "profile"))
	b.WriteString("\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n</dict>\n</plist>\n")
	return b.String()
}

func plistString(b *strings.Builder, indent int, key, value string) {
	tabs := strings.Repeat("\t", indent)
	b.WriteString(tabs + "<key>" + key + "</key>\n" + tabs + "<string>")
	_ = xml.EscapeText(b, []byte(value))
	b.WriteString("</string>\n")
}

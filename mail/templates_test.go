package mail_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keeperhq/keeper"
	"github.com/keeperhq/keeper/mail"
)

func newTemplates(t *testing.T) *mail.Templates {
	t.Helper()
	tmpl, err := mail.NewTemplates()
	if err != nil {
		t.Fatalf("NewTemplates: %v", err)
	}
	return tmpl
}

func TestTemplates(t *testing.T) {
	tmpl := newTemplates(t)
	const (
		to    = "owner@example.org"
		name  = `<script>alert("x")</script> & Co`
		link  = "https://keeper.example.com/activate?token=abc123&lang=en"
		login = "https://keeper.example.com/login"
		reset = "https://keeper.example.com/password/forgot"
	)
	tests := []struct {
		name      string
		render    func() keeper.Message
		subject   string
		links     []string // each on a line of its own in the text, as an href in HTML
		wantText  []string
		forbidden []string // must not appear in either body
	}{
		{
			name:     "activation",
			render:   func() keeper.Message { return tmpl.Activation(to, name, link, 24*time.Hour) },
			subject:  mail.SubjectActivation,
			links:    []string{link},
			wantText: []string{"expires in 24 hours", "Keeper"},
		},
		{
			name:     "password reset",
			render:   func() keeper.Message { return tmpl.PasswordReset(to, name, link, time.Hour) },
			subject:  mail.SubjectPasswordReset,
			links:    []string{link},
			wantText: []string{"expires in 1 hour", "reset the password"},
		},
		{
			name:     "already registered",
			render:   func() keeper.Message { return tmpl.AlreadyRegistered(to, name, login, reset) },
			subject:  mail.SubjectAlreadyRegistered,
			links:    []string{login, reset},
			wantText: []string{"Someone tried", "already", "ignore this message"},
			// Nothing that tells the state of the account or carries a credential.
			forbidden: []string{"token", "activat", "disabled", "password is", "expires"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.render()
			if m.To != to || m.Subject != tt.subject {
				t.Errorf("got To %q Subject %q, want %q %q", m.To, m.Subject, to, tt.subject)
			}
			checkID(t, m.ID, tt.render().ID)
			checkText(t, m.Text, name, tt.links, tt.wantText)
			checkHTML(t, m.HTML, tt.links)
			for _, word := range tt.forbidden {
				body := strings.ToLower(m.Text + m.HTML)
				if strings.Contains(body, word) {
					t.Errorf("got a body containing %q, want none", word)
				}
			}
		})
	}
}

func checkID(t *testing.T, id, other string) {
	t.Helper()
	if !regexp.MustCompile(`^[a-z2-7]{26}$`).MatchString(id) {
		t.Errorf("got ID %q, want 26 base32 characters", id)
	}
	if id == other {
		t.Errorf("got the same ID %q twice, want a fresh one per message", id)
	}
}

func checkText(t *testing.T, text, name string, links, want []string) {
	t.Helper()
	if !strings.Contains(text, "Hello "+name+",") {
		t.Errorf("got text without the greeting to %q:\n%s", name, text)
	}
	for _, l := range links {
		if !hasLine(text, l) {
			t.Errorf("got text without %s on a line of its own:\n%s", l, text)
		}
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("got text without %q:\n%s", w, text)
		}
	}
}

func checkHTML(t *testing.T, html string, links []string) {
	t.Helper()
	if strings.Contains(html, "<script>") {
		t.Errorf("got HTML with an unescaped <script>:\n%s", html)
	}
	escaped := "Hello &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co,"
	if !strings.Contains(html, escaped) {
		t.Errorf("got HTML without the escaped greeting %q:\n%s", escaped, html)
	}
	for _, l := range links {
		href := `href="` + strings.ReplaceAll(l, "&", "&amp;") + `"`
		if !strings.Contains(html, href) {
			t.Errorf("got HTML without %s:\n%s", href, html)
		}
	}
}

func TestTemplatesNeutraliseScriptLinks(t *testing.T) {
	m := newTemplates(t).Activation("a@example.org", "A", "javascript:alert(1)", time.Hour)
	if strings.Contains(m.HTML, `href="javascript:`) {
		t.Errorf("got HTML with a javascript: link:\n%s", m.HTML)
	}
}

func TestTemplatesGreetingWithoutName(t *testing.T) {
	m := newTemplates(t).PasswordReset("a@example.org", "", "https://k.example/r", time.Hour)
	if !strings.HasPrefix(m.Text, "Hello,\n") {
		t.Errorf("got text starting %q, want \"Hello,\\n\"", m.Text[:min(len(m.Text), 20)])
	}
	if !strings.Contains(m.HTML, "<p>Hello,</p>") {
		t.Errorf("got HTML without <p>Hello,</p>:\n%s", m.HTML)
	}
}

func TestTemplatesLinkLifetime(t *testing.T) {
	tmpl := newTemplates(t)
	tests := []struct {
		ttl  time.Duration
		want string
	}{
		{30 * time.Minute, "expires in 30 minutes"},
		{time.Minute, "expires in 1 minute"},
		{time.Hour, "expires in 1 hour"},
		{24 * time.Hour, "expires in 24 hours"},
		{72 * time.Hour, "expires in 3 days"},
		{90 * time.Second, "expires in 1m30s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			m := tmpl.Activation("a@example.org", "A", "https://k.example/a", tt.ttl)
			if !strings.Contains(m.Text, tt.want) || !strings.Contains(m.HTML, tt.want) {
				t.Errorf("got bodies without %q:\n%s", tt.want, m.Text)
			}
		})
	}
}

// hasLine reports whether text has a line equal to line.
func hasLine(text, line string) bool {
	for l := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

package app

import (
	"errors"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"

	"porthole/forwarder"
	"porthole/settings"
	"porthole/wire"
)

// Choices shown in the form.
const (
	relayBuiltin = "Built-in local relay"
	relayRemote  = "Remote relay"

	trustSystem      = "System roots (a publicly trusted certificate)"
	trustCAFile      = "CA file"
	trustFingerprint = "Fingerprint"

	typeHTTP = "HTTP"
	typeTCP  = "TCP"
	typeTLS  = "TLS"
)

// profileForm edits one profile. It only touches widgets; saving is the
// window's job.
type profileForm struct {
	original settings.Profile
	// loaded is what the form showed when the profile was loaded; the
	// form has unsaved changes while it shows anything else.
	loaded formValues

	name, relayAddr, token, relayCA, fingerprint *widget.Entry
	subdomain, remotePort, upstream, upstreamCA  *widget.Entry
	basicUser, basicPass                         *widget.Entry
	relayMode, endpoint                          *widget.RadioGroup
	trust                                        *widget.Select
	normalized                                   *widget.Label
	http2, verify, rewrite, startWithApp         *widget.Check
	relayCABrowse, upstreamCABrowse              *widget.Button
	errs                                         map[settings.Field]*widget.Label
	content                                      fyne.CanvasObject
	loading                                      bool
	// passMissing is set when the keyring lacks the saved profile's
	// basic-auth password: saving then needs one typed.
	passMissing bool
}

func newProfileForm(parent func() fyne.Window) *profileForm {
	f := &profileForm{errs: map[settings.Field]*widget.Label{}}
	f.name = widget.NewEntry()
	f.relayMode = widget.NewRadioGroup([]string{relayBuiltin, relayRemote}, func(string) { f.sync() })
	f.relayMode.Horizontal = true
	f.relayMode.Required = true
	f.relayAddr = widget.NewEntry()
	f.relayAddr.SetPlaceHolder("tunnels.example.com (port 7835 unless given)")
	f.token = widget.NewPasswordEntry()
	f.trust = widget.NewSelect([]string{trustSystem, trustCAFile, trustFingerprint}, nil) // see below
	f.relayCA = widget.NewEntry()
	f.relayCA.SetPlaceHolder("/path/to/relay-ca.pem")
	f.relayCABrowse = browseButton(f.relayCA, parent)
	f.fingerprint = widget.NewEntry()
	f.fingerprint.SetPlaceHolder("64 hex digits, as the relay prints it")
	f.endpoint = widget.NewRadioGroup([]string{typeHTTP, typeTCP, typeTLS}, func(string) { f.sync() })
	f.endpoint.Horizontal = true
	f.endpoint.Required = true
	f.subdomain = widget.NewEntry()
	f.subdomain.SetPlaceHolder("random if empty; or a full hostname your token owns")
	f.remotePort = widget.NewEntry()
	f.remotePort.SetPlaceHolder("any free port if empty")
	f.upstream = widget.NewEntry()
	f.upstream.SetPlaceHolder("8000, localhost:8000 or https://localhost:8443")
	f.upstream.OnChanged = func(string) { f.showNormalized() }
	f.normalized = widget.NewLabel("")
	f.normalized.Wrapping = fyne.TextWrapWord
	f.http2 = widget.NewCheck("HTTP/2 to upstream", nil)
	f.verify = widget.NewCheck("Verify upstream TLS certificate", func(bool) { f.sync() })
	f.upstreamCA = widget.NewEntry()
	f.upstreamCA.SetPlaceHolder("CA file (system roots if empty)")
	f.upstreamCABrowse = browseButton(f.upstreamCA, parent)
	f.rewrite = widget.NewCheck("Rewrite Host header", nil)
	f.basicUser = widget.NewEntry()
	f.basicUser.SetPlaceHolder("user (no password protection if empty)")
	f.basicPass = widget.NewPasswordEntry()
	f.startWithApp = widget.NewCheck("Start when Porthole starts", nil)

	var cells []fyne.CanvasObject
	// field adds a row labelled as settings words the field's problems.
	field := func(field settings.Field, obj fyne.CanvasObject) {
		cells = append(cells, f.row(field.Label(), obj, field)...)
	}
	other := func(label string, obj fyne.CanvasObject) {
		cells = append(cells, f.row(label, obj, "")...)
	}
	field(settings.FieldName, f.name)
	other("Relay", f.relayMode)
	field(settings.FieldRelayAddr, f.relayAddr)
	field(settings.FieldToken, f.token)
	field(settings.FieldTrust, f.trust)
	field(settings.FieldRelayCA, container.NewBorder(nil, nil, nil, f.relayCABrowse, f.relayCA))
	field(settings.FieldFingerprint, f.fingerprint)
	field(settings.FieldType, f.endpoint)
	field(settings.FieldSubdomain, f.subdomain)
	field(settings.FieldRemotePort, f.remotePort)
	// The upstream's problems show in the live line under it.
	other(settings.FieldUpstream.Label(), container.NewVBox(f.upstream, f.normalized))
	other("", f.http2)
	other("", f.verify)
	field(settings.FieldUpstreamCA, container.NewBorder(nil, nil, nil, f.upstreamCABrowse, f.upstreamCA))
	other("", f.rewrite)
	field(settings.FieldBasicAuth, f.basicUser)
	field(settings.FieldBasicAuthPwd, f.basicPass)
	other("", f.startWithApp)
	// A problem shown at a field goes away once the person edits the field
	// (the next Save checks again); an untrusted certificate, once they
	// change how the relay is trusted.
	for field, e := range map[settings.Field]*widget.Entry{
		settings.FieldName: f.name, settings.FieldRelayAddr: f.relayAddr, settings.FieldToken: f.token,
		settings.FieldRelayCA: f.relayCA, settings.FieldFingerprint: f.fingerprint,
		settings.FieldSubdomain: f.subdomain, settings.FieldRemotePort: f.remotePort,
		settings.FieldUpstreamCA: f.upstreamCA, settings.FieldBasicAuth: f.basicUser, settings.FieldBasicAuthPwd: f.basicPass,
	} {
		e.OnChanged = func(string) {
			f.clearProblem(field)
			if e == f.relayCA || e == f.fingerprint {
				f.clearProblem(settings.FieldTrust)
			}
		}
	}
	f.trust.OnChanged = func(string) {
		f.clearProblem(settings.FieldTrust)
		f.sync()
	}
	grid := container.New(layout.NewFormLayout(), cells...)
	f.content = grid
	return f
}

// row returns the two cells of a form row: the label, and the field with
// the line under it where its problems show.
func (f *profileForm) row(label string, obj fyne.CanvasObject, field settings.Field) []fyne.CanvasObject {
	l := widget.NewLabel(label)
	l.Alignment = fyne.TextAlignTrailing
	if field == "" {
		return []fyne.CanvasObject{l, obj}
	}
	e := widget.NewLabel("")
	e.Importance = widget.DangerImportance
	e.Wrapping = fyne.TextWrapWord
	e.Hide()
	f.errs[field] = e
	return []fyne.CanvasObject{l, container.NewVBox(obj, e)}
}

func browseButton(target *widget.Entry, parent func() fyne.Window) *widget.Button {
	return widget.NewButton("Browse…", func() {
		dialog.ShowFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				return
			}
			target.SetText(r.URI().Path())
			r.Close()
		}, parent())
	})
}

// set loads a profile into the form.
func (f *profileForm) set(p settings.Profile) {
	f.loading = true
	defer func() {
		f.loading = false
		f.sync()
		f.loaded = f.values()
	}()
	f.original = p
	f.name.SetText(p.Name)
	if p.BuiltinRelay {
		f.relayMode.SetSelected(relayBuiltin)
	} else {
		f.relayMode.SetSelected(relayRemote)
	}
	f.relayAddr.SetText(p.RelayAddr)
	f.token.SetText("")
	f.token.SetPlaceHolder("")
	f.relayCA.SetText(p.RelayCAFile)
	f.fingerprint.SetText(p.RelayFingerprint)
	switch {
	case p.RelayCAFile != "":
		f.trust.SetSelected(trustCAFile)
	case p.RelayFingerprint != "":
		f.trust.SetSelected(trustFingerprint)
	default:
		f.trust.SetSelected(trustSystem)
	}
	f.endpoint.SetSelected(map[wire.Proto]string{wire.ProtoHTTP: typeHTTP, wire.ProtoTCP: typeTCP, wire.ProtoTLS: typeTLS}[p.Type])
	f.subdomain.SetText(p.Subdomain)
	f.remotePort.SetText("")
	if p.RemotePort != 0 {
		f.remotePort.SetText(strconv.Itoa(p.RemotePort))
	}
	f.upstream.SetText(p.Upstream)
	f.http2.SetChecked(p.UpstreamHTTP2)
	f.verify.SetChecked(p.VerifyUpstreamTLS)
	f.upstreamCA.SetText(p.UpstreamCAFile)
	f.rewrite.SetChecked(p.RewriteHost)
	f.basicUser.SetText(p.BasicAuthUser)
	f.basicPass.SetText("")
	f.basicPass.SetPlaceHolder("")
	f.passMissing = false
	f.startWithApp.SetChecked(p.StartWithApp)
	f.showProblems(nil)
}

// formValues is everything a person can change in the form.
type formValues struct {
	texts   [11]string
	choices [3]string
	checks  [4]bool
}

func (f *profileForm) values() formValues {
	return formValues{
		texts: [...]string{f.name.Text, f.relayAddr.Text, f.token.Text, f.relayCA.Text, f.fingerprint.Text,
			f.subdomain.Text, f.remotePort.Text, f.upstream.Text, f.upstreamCA.Text, f.basicUser.Text, f.basicPass.Text},
		choices: [...]string{f.relayMode.Selected, f.trust.Selected, f.endpoint.Selected},
		checks:  [...]bool{f.http2.Checked, f.verify.Checked, f.rewrite.Checked, f.startWithApp.Checked},
	}
}

// dirty reports whether the form has changes that are not saved.
func (f *profileForm) dirty() bool { return f.values() != f.loaded }

// showSecret shows whether the keyring has the saved profile's secret of
// kind: err is what reading it returned.
func (f *profileForm) showSecret(kind settings.SecretKind, err error) {
	entry, field := f.token, settings.FieldToken
	if kind == settings.SecretBasicAuth {
		entry, field = f.basicPass, settings.FieldBasicAuthPwd
		f.passMissing = errors.Is(err, settings.ErrNoSecret)
	}
	if err == nil {
		entry.SetPlaceHolder("Saved in the keyring (type to replace)")
		return
	}
	entry.SetPlaceHolder("")
	f.showFieldError(field, keyringMessage(err))
}

// read returns the profile in the form, the secrets typed into it, and the
// problems found while reading (such as a port that is not a number).
func (f *profileForm) read() (p settings.Profile, token, basicPass string, bad settings.Problems) {
	bad = settings.Problems{}
	p = f.original
	p.Name = strings.TrimSpace(f.name.Text)
	p.BuiltinRelay = f.relayMode.Selected == relayBuiltin
	p.RelayAddr = strings.TrimSpace(f.relayAddr.Text)
	// A relay pasted as a URL or a bare host is kept as host:port; what
	// does not parse is left for the forwarder's rules to report.
	if addr, err := forwarder.ParseRelayAddr(p.RelayAddr); err == nil && !p.BuiltinRelay {
		p.RelayAddr = addr
	}
	p.RelayCAFile, p.RelayFingerprint = "", ""
	switch f.trust.Selected {
	case trustCAFile:
		p.RelayCAFile = strings.TrimSpace(f.relayCA.Text)
		if p.RelayCAFile == "" && !p.BuiltinRelay {
			bad[settings.FieldRelayCA] = "Choose the CA file, or trust the system roots."
		}
	case trustFingerprint:
		p.RelayFingerprint = strings.TrimSpace(f.fingerprint.Text)
		if p.RelayFingerprint == "" && !p.BuiltinRelay {
			bad[settings.FieldFingerprint] = "Paste the fingerprint the relay printed."
		}
	}
	p.Type = map[string]wire.Proto{typeHTTP: wire.ProtoHTTP, typeTCP: wire.ProtoTCP, typeTLS: wire.ProtoTLS}[f.endpoint.Selected]
	p.Subdomain, p.RemotePort = "", 0
	if p.Type == wire.ProtoTCP {
		if s := strings.TrimSpace(f.remotePort.Text); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				bad[settings.FieldRemotePort] = "Enter a port number, or leave it empty."
			}
			p.RemotePort = n
		}
	} else {
		p.Subdomain = strings.TrimSpace(f.subdomain.Text)
	}
	p.Upstream = strings.TrimSpace(f.upstream.Text)
	isHTTP := p.Type == wire.ProtoHTTP
	p.UpstreamHTTP2 = f.http2.Checked && isHTTP
	p.VerifyUpstreamTLS = f.verify.Checked
	p.UpstreamCAFile = ""
	if p.VerifyUpstreamTLS {
		p.UpstreamCAFile = strings.TrimSpace(f.upstreamCA.Text)
	}
	p.RewriteHost = f.rewrite.Checked && isHTTP
	p.BasicAuthUser = ""
	if isHTTP {
		p.BasicAuthUser = strings.TrimSpace(f.basicUser.Text)
		basicPass = f.basicPass.Text
		if p.BasicAuthUser != "" && basicPass == "" && (f.original.BasicAuthUser == "" || f.passMissing) {
			bad[settings.FieldBasicAuthPwd] = "Enter the password visitors must give."
		}
	}
	p.StartWithApp = f.startWithApp.Checked
	if !p.BuiltinRelay {
		token = f.token.Text
	}
	return p, token, basicPass, bad
}

// sync enables the fields that apply to the current choices.
func (f *profileForm) sync() {
	if f.loading {
		return
	}
	remote := f.relayMode.Selected == relayRemote
	enable(remote, f.relayAddr, f.token, f.relayCA, f.fingerprint)
	enable(remote, f.trust)
	enable(remote && f.trust.Selected == trustCAFile, f.relayCA, f.relayCABrowse)
	enable(remote && f.trust.Selected == trustFingerprint, f.fingerprint)
	typ := f.endpoint.Selected
	enable(typ != typeTCP, f.subdomain)
	enable(typ == typeTCP, f.remotePort)
	enable(typ == typeHTTP, f.http2, f.rewrite, f.basicUser, f.basicPass)
	enable(f.verify.Checked, f.upstreamCA, f.upstreamCABrowse)
	f.showNormalized()
}

type disableable interface {
	Enable()
	Disable()
}

func enable(on bool, ws ...disableable) {
	for _, w := range ws {
		if on {
			w.Enable()
		} else {
			w.Disable()
		}
	}
}

// showNormalized shows, live, the upstream as the forwarder will use it.
func (f *profileForm) showNormalized() {
	p, _, _, _ := f.read()
	if p.Upstream == "" {
		f.normalized.SetText("")
		return
	}
	u, err := p.NormalizedUpstream()
	if err != nil {
		f.showUpstreamProblem(settings.UpstreamMessage(err))
		return
	}
	f.normalized.Importance = widget.SuccessImportance
	f.normalized.SetText("→ " + u)
}

func (f *profileForm) showUpstreamProblem(msg string) {
	f.normalized.Importance = widget.DangerImportance
	f.normalized.SetText(msg)
}

// showProblems shows each problem under its field and clears the others.
func (f *profileForm) showProblems(bad settings.Problems) {
	if msg, ok := bad[settings.FieldUpstream]; ok {
		f.showUpstreamProblem(msg)
	} else {
		f.showNormalized()
	}
	for field, l := range f.errs {
		if msg, ok := bad[field]; ok {
			l.SetText(msg)
			l.Show()
		} else {
			l.SetText("")
			l.Hide()
		}
	}
}

// clearProblem hides the problem shown under a field.
func (f *profileForm) clearProblem(field settings.Field) {
	if l, ok := f.errs[field]; ok && l.Visible() {
		l.SetText("")
		l.Hide()
	}
}

// showFieldError shows one error under a field.
func (f *profileForm) showFieldError(field settings.Field, msg string) {
	if l, ok := f.errs[field]; ok {
		l.SetText(msg)
		l.Show()
	}
}

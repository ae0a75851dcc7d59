package archive

// Import's --change instructions, with docker's semantics (moby's
// builder/dockerfile BuildFromConfig, dispatchers.go):
//
//   - Each change is one Dockerfile instruction, keyword case-insensitive.
//   - CMD and ENTRYPOINT take a JSON array of strings (exec form) or any
//     other text (shell form), which becomes ["/bin/sh", "-c", text].
//     ENTRYPOINT clears CMD unless a CMD came earlier in the same changes.
//   - ENV and LABEL take key=value pairs (quotes and backslashes as in a
//     shell word) or the legacy "KEY rest of the line".
//   - ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME and STOPSIGNAL arguments are
//     expanded with the environment set so far: $NAME, ${NAME},
//     ${NAME:-default} and ${NAME:+alternative}; single quotes and a
//     backslash keep a "$" literal. All pairs of one ENV see the environment
//     from before it, as in docker.
//   - A relative WORKDIR is joined to the previous one.
//   - Anything else (RUN, COPY, FROM, ONBUILD, HEALTHCHECK, SHELL, ...) is
//     ErrUnknownInstruction.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/sys/signal"
)

// defaultShell runs shell-form CMD and ENTRYPOINT, as docker's on Linux.
var defaultShell = []string{"/bin/sh", "-c"}

// ApplyChanges applies docker-style change instructions to cfg in order.
// It is exported so the CLI can validate --change flags before reading a
// possibly large input.
func ApplyChanges(cfg *v1.Config, changes []string) error {
	c := changer{cfg: cfg}
	for _, change := range changes {
		// docker joins the changes with newlines and parses them as a
		// Dockerfile, so a change holding newlines is several instructions.
		for _, line := range strings.Split(change, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := c.apply(line); err != nil {
				return err
			}
		}
	}
	return nil
}

type changer struct {
	cfg    *v1.Config
	cmdSet bool
}

func (c *changer) apply(line string) error {
	kw, rest := cutSpace(line)
	switch strings.ToUpper(kw) {
	case "CMD":
		cmd, err := c.commandLine(kw, rest)
		if err != nil {
			return err
		}
		c.cfg.Cmd, c.cmdSet = cmd, true
	case "ENTRYPOINT":
		ep, err := c.commandLine(kw, rest)
		if err != nil {
			return err
		}
		c.cfg.Entrypoint = ep
		if !c.cmdSet {
			c.cfg.Cmd = nil
		}
	case "ENV":
		pairs, err := c.nameVals(kw, rest)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			c.cfg.Env = setEnv(c.cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := c.nameVals(kw, rest)
		if err != nil {
			return err
		}
		if c.cfg.Labels == nil {
			c.cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			c.cfg.Labels[kv[0]] = kv[1]
		}
	case "WORKDIR":
		dir, err := c.single(kw, rest)
		if err != nil {
			return err
		}
		// docker joins a relative path to the current one and leaves an
		// absolute one as given.
		if !filepath.IsAbs(dir) {
			dir = filepath.Join("/", c.cfg.WorkingDir, dir)
		}
		c.cfg.WorkingDir = dir
	case "USER":
		user, err := c.single(kw, rest)
		if err != nil {
			return err
		}
		c.cfg.User = user
	case "STOPSIGNAL":
		sig, err := c.single(kw, rest)
		if err != nil {
			return err
		}
		if _, err := signal.ParseSignal(sig); err != nil {
			return fmt.Errorf("%w: %s %s: %v", ErrInvalidChange, kw, rest, err)
		}
		c.cfg.StopSignal = sig
	case "EXPOSE":
		words := strings.Fields(rest)
		if len(words) == 0 {
			return fmt.Errorf("%w: %s requires at least one argument", ErrInvalidChange, kw)
		}
		for _, w := range words {
			p, err := c.expand(w)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalidChange, kw, err)
			}
			ports, err := parsePorts(p)
			if err != nil {
				return fmt.Errorf("%w: %s %s: %v", ErrInvalidChange, kw, w, err)
			}
			if c.cfg.ExposedPorts == nil {
				c.cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, port := range ports {
				c.cfg.ExposedPorts[port] = struct{}{}
			}
		}
	case "VOLUME":
		vols, ok := jsonArray(rest)
		if !ok {
			vols = strings.Fields(rest)
		}
		if len(vols) == 0 {
			return fmt.Errorf("%w: %s requires at least one argument", ErrInvalidChange, kw)
		}
		for _, v := range vols {
			p, err := c.expand(v)
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalidChange, kw, err)
			}
			if strings.TrimSpace(p) == "" {
				return fmt.Errorf("%w: %s specified can not be an empty string", ErrInvalidChange, kw)
			}
			if c.cfg.Volumes == nil {
				c.cfg.Volumes = map[string]struct{}{}
			}
			c.cfg.Volumes[p] = struct{}{}
		}
	default:
		return fmt.Errorf("%w: %s (import accepts CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)", ErrUnknownInstruction, kw)
	}
	return nil
}

// commandLine parses a CMD or ENTRYPOINT argument: exec form or shell form.
func (c *changer) commandLine(kw, rest string) ([]string, error) {
	if args, ok := jsonArray(rest); ok {
		return args, nil
	}
	if rest == "" {
		return nil, fmt.Errorf("%w: %s requires at least one argument", ErrInvalidChange, kw)
	}
	shell := defaultShell
	if len(c.cfg.Shell) > 0 {
		shell = c.cfg.Shell
	}
	return append(append([]string(nil), shell...), rest), nil
}

// single parses an instruction taking the rest of the line as one word.
func (c *changer) single(kw, rest string) (string, error) {
	if rest == "" {
		return "", fmt.Errorf("%w: %s requires exactly one argument", ErrInvalidChange, kw)
	}
	v, err := c.expand(rest)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalidChange, kw, err)
	}
	if v == "" {
		return "", fmt.Errorf("%w: %s %s expands to nothing", ErrInvalidChange, kw, rest)
	}
	return v, nil
}

// nameVals parses ENV and LABEL arguments into expanded key/value pairs.
func (c *changer) nameVals(kw, rest string) ([][2]string, error) {
	words, err := splitWords(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidChange, kw, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: %s requires at least one argument", ErrInvalidChange, kw)
	}
	var raw [][2]string
	if !strings.Contains(words[0], "=") {
		// Legacy form: the first word is the key, the rest of the line
		// (one word, spaces kept) the value.
		key, val := cutSpace(rest)
		if val == "" {
			return nil, fmt.Errorf("%w: %s must have two arguments", ErrInvalidChange, kw)
		}
		raw = append(raw, [2]string{key, val})
	} else {
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				return nil, fmt.Errorf("%w: %s: can't find = in %q, must be of the form name=value", ErrInvalidChange, kw, w)
			}
			raw = append(raw, [2]string{k, v})
		}
	}
	out := make([][2]string, 0, len(raw))
	for _, kv := range raw {
		k, err := c.expand(kv[0])
		if err == nil {
			kv[1], err = c.expand(kv[1])
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidChange, kw, err)
		}
		if k == "" {
			return nil, fmt.Errorf("%w: %s names an empty key", ErrInvalidChange, kw)
		}
		out = append(out, [2]string{k, kv[1]})
	}
	return out, nil
}

func (c *changer) expand(word string) (string, error) {
	return expandWord(word, func(name string) (string, bool) {
		for i := len(c.cfg.Env) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(c.cfg.Env[i], "="); k == name {
				return v, true
			}
		}
		return "", false
	})
}

// cutSpace splits s at its first run of white space.
func cutSpace(s string) (string, string) {
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// jsonArray parses the exec form: a JSON array of strings. Anything else,
// including malformed JSON, is the shell form, as in docker.
func jsonArray(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, false
	}
	if out == nil {
		out = []string{}
	}
	return out, true
}

func setEnv(env []string, key, val string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			env[i] = key + "=" + val
			return env
		}
	}
	return append(env, key+"="+val)
}

// splitWords splits s at white space outside quotes, keeping quotes and
// backslashes in the words for expandWord (docker's parseWords).
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == '\\' && quote != '\'':
			escaped = true
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			continue
		}
		cur.WriteRune(r)
		inWord = true
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// expandWord removes quotes and backslashes from word and substitutes
// variables from lookup, as a shell does for one word.
func expandWord(word string, lookup func(string) (string, bool)) (string, error) {
	var out strings.Builder
	rs := []rune(word)
	var quote rune
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				out.WriteRune(r)
			}
		case r == '\\':
			if i+1 == len(rs) {
				out.WriteRune(r)
				continue
			}
			next := rs[i+1]
			// In double quotes a backslash only escapes these.
			if quote == '"' && !strings.ContainsRune("\"\\$", next) {
				out.WriteRune(r)
				continue
			}
			out.WriteRune(next)
			i++
		case r == '"':
			if quote == '"' {
				quote = 0
			} else {
				quote = '"'
			}
		case r == '\'' && quote == 0:
			quote = '\''
		case r == '$':
			val, n, err := expandVar(rs[i+1:], lookup)
			if err != nil {
				return "", err
			}
			out.WriteString(val)
			i += n
		default:
			out.WriteRune(r)
		}
	}
	if quote != 0 {
		return "", fmt.Errorf("unterminated quote in %q", word)
	}
	return out.String(), nil
}

// expandVar expands the variable after a "$" and returns its value and the
// number of runes of rs it used. A "$" not followed by a name is literal.
func expandVar(rs []rune, lookup func(string) (string, bool)) (string, int, error) {
	isName := func(r rune, first bool) bool {
		return r == '_' || unicode.IsLetter(r) || (!first && unicode.IsDigit(r))
	}
	if len(rs) > 0 && rs[0] != '{' {
		n := 0
		for n < len(rs) && isName(rs[n], n == 0) {
			n++
		}
		if n == 0 {
			return "$", 0, nil
		}
		v, _ := lookup(string(rs[:n]))
		return v, n, nil
	}
	if len(rs) == 0 {
		return "$", 0, nil
	}
	end := -1
	depth := 0
	for i := 1; i < len(rs); i++ {
		if rs[i] == '{' {
			depth++
		} else if rs[i] == '}' {
			if depth == 0 {
				end = i
				break
			}
			depth--
		}
	}
	if end < 0 {
		return "", 0, fmt.Errorf("missing '}' in ${%s", string(rs[1:]))
	}
	body := string(rs[1:end])
	name, mod, hasMod := strings.Cut(body, ":")
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isName(r, false) }) >= 0 || unicode.IsDigit([]rune(name)[0]) {
		return "", 0, fmt.Errorf("bad substitution ${%s}", body)
	}
	v, set := lookup(name)
	if !hasMod {
		return v, end + 1, nil
	}
	if len(mod) == 0 || (mod[0] != '-' && mod[0] != '+') {
		return "", 0, fmt.Errorf("unsupported modifier in ${%s}", body)
	}
	alt, err := expandWord(mod[1:], lookup)
	if err != nil {
		return "", 0, err
	}
	switch mod[0] {
	case '-':
		if !set || v == "" {
			v = alt
		}
	case '+':
		if set && v != "" {
			v = alt
		} else {
			v = ""
		}
	}
	return v, end + 1, nil
}

// parsePorts expands an EXPOSE argument ("80", "53/udp", "8000-8002/tcp")
// to docker's "port/proto" keys.
func parsePorts(spec string) ([]string, error) {
	if strings.Contains(spec, ":") {
		return nil, fmt.Errorf("a host mapping cannot be exposed")
	}
	portPart, proto, hasProto := strings.Cut(spec, "/")
	proto = strings.ToLower(proto)
	if !hasProto {
		proto = "tcp"
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("invalid protocol %q", proto)
	}
	lo, hi, isRange := strings.Cut(portPart, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", portPart)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid port range %q", portPart)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

package audit

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
)

// Kind says what is wrong with a log.
type Kind string

// The problems Verify reports.
const (
	// KindMalformed: a line is not an audit record (bad JSON, a missing
	// or invalid field, an empty line).
	KindMalformed Kind = "malformed"
	// KindEdited: a record's bytes changed (its successor no longer
	// links to it, or its own fields disagree with the chain).
	KindEdited Kind = "edited"
	// KindDeleted: records are missing (a gap in seq).
	KindDeleted Kind = "deleted"
	// KindInserted: a record that is not part of the chain.
	KindInserted Kind = "inserted"
	// KindReordered: records out of order.
	KindReordered Kind = "reordered"
	// KindBadSignature: a checkpoint whose signature does not verify
	// (records before it were rewritten, or it was forged).
	KindBadSignature Kind = "bad signature"
	// KindTruncated: the log ends early: a last line without its
	// newline, or fewer records than the server's chain head.
	KindTruncated Kind = "truncated"
	// KindRestarted: a new chain (seq 1) starts in the middle of the
	// files.
	KindRestarted Kind = "restarted"
)

// Problem is the first bad record Verify found.
type Problem struct {
	Kind   Kind
	File   string // the source's name
	Line   int    // 1-based line in File
	Seq    uint64 // the record's seq, when it could be read (else 0)
	Detail string
}

func (p *Problem) String() string {
	s := fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Kind)
	if p.Seq != 0 {
		s += fmt.Sprintf(" (seq %d)", p.Seq)
	}
	return s + ": " + p.Detail
}

// Report is the result of Verify.
type Report struct {
	OK      bool
	Problem *Problem // the first bad record; nil when OK

	Records     uint64 // lines verified, checkpoints included
	Checkpoints uint64 // checkpoints whose signature verified
	FirstSeq    uint64 // seq of the first record (1 when the files start the chain)
	Last        Head   // the last good record
	// SignedThrough is the seq of the last verified checkpoint: every
	// record up to it is covered by a signature. Records after it are
	// covered only by the chain (and by the head, when given).
	SignedThrough uint64
	// SignaturesChecked is false when Verify had no public key.
	SignaturesChecked bool
	// HeadChecked is true when a head was given and matched a record.
	HeadChecked bool
}

// Source is one file of a log, for VerifyReaders.
type Source struct {
	Name string
	R    io.Reader
}

// maxLine bounds a record line; a longer one is reported as malformed.
const maxLine = 64 << 20

// Verify checks the chain across files, which must be given in order
// (RotatedFiles gives a file device's). pub verifies the checkpoints
// (nil skips signatures). head, when given, is the server's current chain
// head for the device: a log that ends before it is truncated, and the
// record at head.Seq must have head.Hash. The error is for files that
// cannot be read; everything wrong with their contents is in the Report.
func Verify(files []string, pub ed25519.PublicKey, head *Head) (*Report, error) {
	v := newVerifier(pub, head)
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("audit: verify: %w", err)
		}
		v.add(Source{Name: name, R: f})
		defer f.Close()
	}
	return v.run()
}

// VerifyReaders is Verify on readers.
func VerifyReaders(srcs []Source, pub ed25519.PublicKey, head *Head) (*Report, error) {
	v := newVerifier(pub, head)
	for _, s := range srcs {
		v.add(s)
	}
	return v.run()
}

// vline is one line of the logical stream across files.
type vline struct {
	file     string
	no       int
	raw      []byte // without its newline
	complete bool   // ended in a newline
	rec      record
	err      error // from parseLine
	hash     string
}

// lookahead is how many lines the verifier reads ahead to tell a
// reordering (the missing record comes later) from a deletion.
const lookahead = 64

type verifier struct {
	pub  ed25519.PublicKey
	head *Head
	srcs []Source

	cur     int // index into srcs
	rd      *bufio.Reader
	lineNo  int
	pending []*vline // read ahead, not yet processed
	ioErr   error

	rep  Report
	last *vline // the last good line
	// seen is set once the record at head.Seq was checked.
	seen bool
}

func newVerifier(pub ed25519.PublicKey, head *Head) *verifier {
	return &verifier{pub: pub, head: head, rep: Report{SignaturesChecked: pub != nil}}
}

func (v *verifier) add(s Source) { v.srcs = append(v.srcs, s) }

// read returns the next line of the stream, or nil at its end.
func (v *verifier) read() *vline {
	for v.ioErr == nil && v.cur < len(v.srcs) {
		if v.rd == nil {
			v.rd = bufio.NewReaderSize(v.srcs[v.cur].R, 64<<10)
			v.lineNo = 0
		}
		raw, complete, tooLong, err := readLine(v.rd)
		if errors.Is(err, io.EOF) {
			v.rd = nil
			v.cur++
			continue
		}
		if err != nil {
			v.ioErr = fmt.Errorf("audit: verify: read %s: %w", v.srcs[v.cur].Name, err)
			return nil
		}
		v.lineNo++
		l := &vline{file: v.srcs[v.cur].Name, no: v.lineNo, raw: raw, complete: complete}
		if tooLong {
			l.err = fmt.Errorf("line longer than %d bytes", maxLine)
		} else {
			l.rec, l.err = parseLine(raw)
			l.hash = lineHash(raw)
		}
		return l
	}
	return nil
}

// readLine reads one line: raw without its newline, whether it had one,
// and whether it was over maxLine (then raw is nil). err is io.EOF at
// the end of input.
func readLine(r *bufio.Reader) (raw []byte, complete, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > maxLine+1 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, true, true, nil
			}
			return buf[:len(buf)-1], true, false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if !tooLong && len(buf) == 0 {
				return nil, false, false, io.EOF
			}
			return buf, false, tooLong, nil
		default:
			return nil, false, false, err
		}
	}
}

// peek returns the i-th line after the current one, or nil.
func (v *verifier) peek(i int) *vline {
	for len(v.pending) <= i {
		l := v.read()
		if l == nil {
			return nil
		}
		v.pending = append(v.pending, l)
	}
	return v.pending[i]
}

func (v *verifier) next() *vline {
	if l := v.peek(0); l != nil {
		v.pending = v.pending[1:]
		return l
	}
	return nil
}

func (v *verifier) run() (*Report, error) {
	for {
		l := v.next()
		if v.ioErr != nil {
			return nil, v.ioErr
		}
		if l == nil {
			break
		}
		if p := v.check(l); p != nil {
			if v.ioErr != nil {
				return nil, v.ioErr
			}
			v.rep.Problem = p
			return &v.rep, nil
		}
		v.accept(l)
	}
	if p := v.checkEnd(); p != nil {
		v.rep.Problem = p
		return &v.rep, nil
	}
	v.rep.OK = true
	return &v.rep, nil
}

func (v *verifier) accept(l *vline) {
	if v.last == nil {
		v.rep.FirstSeq = l.rec.Seq
	}
	v.last = l
	v.rep.Records++
	v.rep.Last = Head{Seq: l.rec.Seq, Hash: l.hash}
	if l.rec.CP != nil && v.pub != nil {
		v.rep.Checkpoints++
		v.rep.SignedThrough = l.rec.Seq
	}
}

func problem(l *vline, k Kind, format string, args ...any) *Problem {
	return &Problem{Kind: k, File: l.file, Line: l.no, Seq: l.rec.Seq, Detail: fmt.Sprintf(format, args...)}
}

// check returns what is wrong with l given the lines before it (and a
// look at the lines after it), or nil.
func (v *verifier) check(l *vline) *Problem {
	if !l.complete {
		return problem(l, KindTruncated, "the last line of the file has no newline: the file was cut short or a write was torn")
	}
	if l.err != nil {
		return &Problem{Kind: KindMalformed, File: l.file, Line: l.no, Detail: "not an audit record: " + l.err.Error()}
	}
	if p := v.checkLink(l); p != nil {
		return p
	}
	if p := v.checkCheckpoint(l); p != nil {
		return p
	}
	if v.head != nil && l.rec.Seq == v.head.Seq {
		v.seen = true
		if l.hash != v.head.Hash {
			return problem(l, KindEdited, "the record does not match the server's chain head (hash %s, head %s)", l.hash, v.head.Hash)
		}
		v.rep.HeadChecked = true
	}
	return nil
}

// linksTo reports whether n is the valid successor of l.
func linksTo(n, l *vline) bool {
	return n != nil && n.complete && n.err == nil && n.rec.Seq == l.rec.Seq+1 && n.rec.Prev == l.hash
}

// checkLink checks that l follows v.last in the chain and, when it does
// not, works out what happened.
func (v *verifier) checkLink(l *vline) *Problem {
	s, p := l.rec.Seq, l.rec.Prev
	last := v.last
	if last == nil {
		if s == 1 && p != Genesis {
			return problem(l, KindEdited, "the first record of the chain (seq 1) has prev %s, not the genesis value", p)
		}
		return nil
	}
	ls, lh := last.rec.Seq, last.hash
	next := v.peek(0)
	switch {
	case s == ls+1 && p == lh:
		return nil
	case s == ls+1:
		// Either last changed after it was written, or l did, or l is a
		// forged stand-in for the real record.
		switch {
		case next != nil && next.err == nil && next.rec.Seq == s && next.rec.Prev == lh:
			return problem(l, KindInserted, "the record is not part of the chain: the next line has the same seq and links to line %d", last.no)
		case last.rec.CP == nil && (linksTo(next, l) || v.signedLink(l)):
			return problem(last, KindEdited, "the record was changed: line %d (seq %d) records a different hash for it", l.no, s)
		default:
			return problem(l, KindEdited, "the record does not link to the one before it (line %d, seq %d)", last.no, ls)
		}
	case s == 1 && p == Genesis:
		return problem(l, KindRestarted, "a new chain starts here after seq %d; verify the files before and after separately", ls)
	case s > ls+1:
		if p == lh {
			return problem(l, KindEdited, "the record links to seq %d but says it is seq %d", ls, s)
		}
		for i := 0; i < lookahead; i++ {
			n := v.peek(i)
			if n == nil {
				break
			}
			if n.err == nil && n.rec.Seq == ls+1 {
				where := fmt.Sprintf("line %d", n.no)
				if n.file != l.file {
					where += " of " + n.file
				}
				return problem(l, KindReordered, "out of order: seq %d belongs here and comes later (%s)", ls+1, where)
			}
		}
		if s == ls+2 {
			return problem(l, KindDeleted, "record seq %d is missing before this line", ls+1)
		}
		return problem(l, KindDeleted, "records seq %d to %d are missing before this line", ls+1, s-1)
	case s == ls && p == last.rec.Prev:
		if linksTo(next, l) {
			return problem(last, KindInserted, "the record is not part of the chain: line %d has the same seq and the chain continues from it", l.no)
		}
		return problem(l, KindInserted, "the record is not part of the chain: line %d already has seq %d", last.no, s)
	default: // s <= ls
		if next != nil && next.err == nil && next.rec.Seq == ls+1 && next.rec.Prev == lh {
			return problem(l, KindInserted, "the record is not part of the chain (it repeats seq %d; the chain continues on the next line)", s)
		}
		return problem(l, KindReordered, "seq %d comes after seq %d", s, ls)
	}
}

// signedLink reports whether l is a checkpoint whose signed hash is its
// prev, so that its link cannot have been changed.
func (v *verifier) signedLink(l *vline) bool {
	cp := l.rec.CP
	return cp != nil && cp.Hash == l.rec.Prev && v.pub != nil && checkSignature(l.raw, l.rec.Sig, v.pub)
}

// checkCheckpoint checks a checkpoint's fields against the chain and its
// signature.
func (v *verifier) checkCheckpoint(l *vline) *Problem {
	cp := l.rec.CP
	if cp == nil {
		return nil
	}
	if cp.Seq != l.rec.Seq-1 || cp.Hash != l.rec.Prev {
		return problem(l, KindEdited, "the checkpoint signs seq %d hash %s but follows seq %d hash %s: the records before it were rewritten",
			cp.Seq, cp.Hash, l.rec.Seq-1, l.rec.Prev)
	}
	if v.pub == nil {
		return nil
	}
	if !checkSignature(l.raw, l.rec.Sig, v.pub) {
		detail := "the signature does not verify: records before it were rewritten, or the checkpoint is forged"
		if id := KeyID(v.pub); cp.KeyID != id {
			detail = fmt.Sprintf("the checkpoint names signing key %s but the key given is %s", cp.KeyID, id)
		}
		if v.rep.SignedThrough > 0 {
			detail += fmt.Sprintf(" (last good checkpoint: seq %d)", v.rep.SignedThrough)
		}
		return problem(l, KindBadSignature, "%s", detail)
	}
	return nil
}

// checkEnd compares the end of the log with the head.
func (v *verifier) checkEnd() *Problem {
	if v.head == nil || v.seen {
		return nil
	}
	var lastSeq uint64
	file, line := "", 0
	if v.last != nil {
		lastSeq, file, line = v.last.rec.Seq, v.last.file, v.last.no+1
	} else if len(v.srcs) > 0 {
		file, line = v.srcs[len(v.srcs)-1].Name, 1
	}
	if v.head.Seq > lastSeq {
		return &Problem{Kind: KindTruncated, File: file, Line: line, Seq: lastSeq + 1,
			Detail: fmt.Sprintf("the log ends at seq %d but the server's chain head is seq %d: records %d to %d are missing",
				lastSeq, v.head.Seq, lastSeq+1, v.head.Seq)}
	}
	// The head is older than these files: nothing to compare.
	return nil
}

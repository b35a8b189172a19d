package tmpl

import (
	"fmt"
	"regexp"
	"sync"

	"github.com/flosch/pongo2/v6"
)

// tagRule says what spec templates may do with one of pongo2's tags: use
// this package's parser, or nothing, and why.
type tagRule struct {
	parse   pongo2.TagParser
	refused string
}

const (
	readsFiles = "it would read files of the build host"
	djangoOnly = "it is a Django tag that vmdb2's Jinja2 does not have"
	ownBuffer  = "it renders its body into a buffer of its own, outside the output limit"
)

// tagRules are all of pongo2 v6.0.0's tags ({% verbatim %}, which the lexer
// handles, is always available).
var tagRules = map[string]tagRule{
	"if":          {parse: parseIf},
	"for":         {parse: parseFor},
	"set":         {parse: parseSet},
	"comment":     {refused: djangoOnly + " (and pongo2's hangs on `{% endcomment` without `%}`); write {# … #}"},
	"include":     {refused: readsFiles},
	"ssi":         {refused: readsFiles},
	"import":      {refused: readsFiles},
	"extends":     {refused: readsFiles},
	"block":       {refused: "blocks belong to template inheritance, which would read files of the build host"},
	"now":         {refused: "it would make the build depend on the clock"},
	"lorem":       {refused: "its random text would make builds differ"},
	"macro":       {refused: "a macro can call itself without end"},
	"with":        {refused: "nested `with`s can double a value at each level; use `set`"},
	"filter":      {refused: ownBuffer + "; apply the filters to the values instead"},
	"spaceless":   {refused: ownBuffer},
	"ifchanged":   {refused: ownBuffer},
	"autoescape":  {refused: "escaping is always off in specs"},
	"cycle":       {refused: djangoOnly},
	"firstof":     {refused: djangoOnly},
	"ifequal":     {refused: djangoOnly + "; write {% if a == b %}"},
	"ifnotequal":  {refused: djangoOnly + "; write {% if a != b %}"},
	"templatetag": {refused: djangoOnly},
	"widthratio":  {refused: djangoOnly},
}

var (
	setOnce sync.Once
	set     *pongo2.TemplateSet
)

// templates returns the template set for spec values, with this package's
// tags and filters in place of pongo2's and the refused ones banned.
// Autoescape is off: HTML escaping would corrupt shell commands.
func templates() *pongo2.TemplateSet {
	setOnce.Do(func() {
		pongo2.SetAutoescape(false)
		s := pongo2.NewSet("vmdb2-spec", pongo2.DefaultLoader)
		for name, rule := range tagRules {
			switch {
			case rule.parse != nil:
				must(pongo2.ReplaceTag(name, rule.parse))
			case rule.refused != "":
				must(s.BanTag(name))
			}
		}
		for name, rule := range filterRules {
			switch {
			case rule.own != nil:
				must(pongo2.ReplaceFilter(name, rule.own))
			case rule.refused != "":
				must(s.BanFilter(name))
			}
		}
		set = s
	})
	return set
}

// must stops on a table entry pongo2 does not know: the tables are out of
// date with pongo2 (TestTablesArePongo2s says which).
func must(err error) {
	if err != nil {
		panic("tmpl: the tag and filter tables do not match pongo2: " + err.Error())
	}
}

var bannedRE = regexp.MustCompile(`^Usage of (tag|filter) '([^']*)' is not allowed`)

// refusalMessage replaces pongo2's message for a banned tag or filter by
// one that says why; ok is false for other messages.
func refusalMessage(msg string) (string, bool) {
	m := bannedRE.FindStringSubmatch(msg)
	if m == nil {
		return "", false
	}
	why := tagRules[m[2]].refused
	if m[1] == "filter" {
		why = filterRules[m[2]].refused
	}
	return fmt.Sprintf("the `%s` %s is not available in spec templates: %s", m[2], m[1], why), true
}

// enter records the line of the tag being run, for errors raised where the
// position is not known (a write, a panic), and returns the line to give
// back when the tag is done. It is not given back by a defer: a panic must
// find the line where it happened.
func (r *Renderer) enter(tok *pongo2.Token) int {
	old := r.line
	r.line = tok.Line
	return old
}

// fail is an Error at tok, as pongo2 returns it from a node.
func fail(ctx *pongo2.ExecutionContext, tok *pongo2.Token, err *Error) *pongo2.Error {
	if err.Line == 0 {
		err.Line = tok.Line
	}
	return ctx.OrigError(err, tok)
}

// step checks the spec's clock after an evaluation.
func step(ctx *pongo2.ExecutionContext, tok *pongo2.Token) *pongo2.Error {
	if err := active.checkTime(); err != nil {
		return fail(ctx, tok, err)
	}
	return nil
}

// ifNode is {% if %}…{% elif %}…{% else %}…{% endif %}: bodies has one
// body per condition and then the else body, if any.
type ifNode struct {
	pos    *pongo2.Token
	conds  []pongo2.IEvaluator
	bodies []*pongo2.NodeWrapper
}

func parseIf(doc *pongo2.Parser, start *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
	n := &ifNode{pos: start}
	for {
		cond, err := args.ParseExpression()
		if err != nil {
			return nil, err
		}
		if args.Remaining() > 0 {
			return nil, args.Error("unexpected text after the condition", nil)
		}
		n.conds = append(n.conds, cond)
		body, next, err := doc.WrapUntilTag("elif", "else", "endif")
		if err != nil {
			return nil, err
		}
		n.bodies = append(n.bodies, body)
		if body.Endtag == "elif" {
			args = next
			continue
		}
		if body.Endtag == "else" {
			if next.Count() > 0 {
				return nil, next.Error("`else` takes no condition (write `elif`)", nil)
			}
			if body, next, err = doc.WrapUntilTag("endif"); err != nil {
				return nil, err
			}
			n.bodies = append(n.bodies, body)
		}
		if next.Count() > 0 {
			return nil, next.Error("`endif` takes no arguments", nil)
		}
		return n, nil
	}
}

func (n *ifNode) Execute(ctx *pongo2.ExecutionContext, w pongo2.TemplateWriter) *pongo2.Error {
	old := active.enter(n.pos)
	err := n.run(ctx, w)
	active.line = old
	return err
}

func (n *ifNode) run(ctx *pongo2.ExecutionContext, w pongo2.TemplateWriter) *pongo2.Error {
	for i, cond := range n.conds {
		v, err := cond.Evaluate(ctx)
		if err != nil {
			return err
		}
		if err := step(ctx, n.pos); err != nil {
			return err
		}
		if v.IsTrue() {
			return n.bodies[i].Execute(ctx, w)
		}
	}
	if len(n.bodies) > len(n.conds) {
		return n.bodies[len(n.conds)].Execute(ctx, w)
	}
	return nil
}

// setNode is {% set name = expression %}: the value is visible to what
// follows in the same block and the blocks inside it.
type setNode struct {
	pos  *pongo2.Token
	name string
	expr pongo2.IEvaluator
}

func parseSet(doc *pongo2.Parser, start *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
	name := args.MatchType(pongo2.TokenIdentifier)
	if name == nil {
		return nil, args.Error("`set` needs a name: {% set name = value %}", nil)
	}
	if args.Match(pongo2.TokenSymbol, "=") == nil {
		return nil, args.Error("expected `=` after the name: {% set name = value %}", nil)
	}
	expr, err := args.ParseExpression()
	if err != nil {
		return nil, err
	}
	if args.Remaining() > 0 {
		return nil, args.Error("unexpected text after the value", nil)
	}
	return &setNode{pos: start, name: name.Val, expr: expr}, nil
}

func (n *setNode) Execute(ctx *pongo2.ExecutionContext, w pongo2.TemplateWriter) *pongo2.Error {
	old := active.enter(n.pos)
	err := n.run(ctx)
	active.line = old
	return err
}

func (n *setNode) run(ctx *pongo2.ExecutionContext) *pongo2.Error {
	v, err := n.expr.Evaluate(ctx)
	if err != nil {
		return err
	}
	if err := step(ctx, n.pos); err != nil {
		return err
	}
	if max := active.limits.Output; v.IsString() && len(v.String()) > max {
		return fail(ctx, n.pos, &Error{Msg: fmt.Sprintf("`set %s` would hold %d bytes, more than %s", n.name, len(v.String()), size(max))})
	}
	ctx.Private[n.name] = v
	return nil
}

package tmpl

import (
	"fmt"

	"github.com/flosch/pongo2/v6"
)

// forNode is {% for key[, value] in expression [reversed] [sorted] %}…
// [{% empty %}…]{% endfor %}. The iteration is pongo2's (Value.IterateOrder),
// so the order and the forloop counters are those of pongo2's own tag.
type forNode struct {
	pos              *pongo2.Token
	key, value       string
	over             pongo2.IEvaluator
	reversed, sorted bool
	body, empty      *pongo2.NodeWrapper
}

// loopInfo is `forloop` inside a loop; the fields are pongo2's names.
type loopInfo struct {
	Counter     int
	Counter0    int
	Revcounter  int
	Revcounter0 int
	First       bool
	Last        bool
	Parentloop  *loopInfo
}

func parseFor(doc *pongo2.Parser, start *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
	n := &forNode{pos: start}
	key := args.MatchType(pongo2.TokenIdentifier)
	if key == nil {
		return nil, args.Error("`for` needs a name: {% for name in list %}", nil)
	}
	n.key = key.Val
	if args.Match(pongo2.TokenSymbol, ",") != nil {
		value := args.MatchType(pongo2.TokenIdentifier)
		if value == nil {
			return nil, args.Error("expected a second name after `,`", nil)
		}
		n.value = value.Val
	}
	if args.Match(pongo2.TokenKeyword, "in") == nil {
		return nil, args.Error("expected `in`: {% for name in list %}", nil)
	}
	over, err := args.ParseExpression()
	if err != nil {
		return nil, err
	}
	n.over = over
	n.reversed = args.MatchOne(pongo2.TokenIdentifier, "reversed") != nil
	n.sorted = args.MatchOne(pongo2.TokenIdentifier, "sorted") != nil
	if args.Remaining() > 0 {
		return nil, args.Error("unexpected text after the list (only `reversed` and `sorted` may follow it)", nil)
	}
	return n, n.parseBodies(doc)
}

func (n *forNode) parseBodies(doc *pongo2.Parser) *pongo2.Error {
	body, end, err := doc.WrapUntilTag("empty", "endfor")
	if err != nil {
		return err
	}
	n.body = body
	if body.Endtag == "empty" {
		if end.Count() > 0 {
			return end.Error("`empty` takes no arguments", nil)
		}
		if n.empty, end, err = doc.WrapUntilTag("endfor"); err != nil {
			return err
		}
	}
	if end.Count() > 0 {
		return end.Error("`endfor` takes no arguments", nil)
	}
	return nil
}

func (n *forNode) Execute(ctx *pongo2.ExecutionContext, w pongo2.TemplateWriter) *pongo2.Error {
	old := active.enter(n.pos)
	err := n.run(ctx, w)
	active.line = old
	return err
}

func (n *forNode) run(ctx *pongo2.ExecutionContext, w pongo2.TemplateWriter) *pongo2.Error {
	r := active
	loop := pongo2.NewChildExecutionContext(ctx)
	info := &loopInfo{First: true}
	info.Parentloop, _ = loop.Private["forloop"].(*loopInfo)
	loop.Private["forloop"] = info
	items, err := n.over.Evaluate(loop)
	if err != nil {
		return err
	}
	if n.sorted && items.IsString() {
		// pongo2 panics on this.
		return fail(ctx, n.pos, &Error{Msg: "`sorted` sorts a list, not a string"})
	}
	var failed *pongo2.Error
	items.IterateOrder(func(idx, count int, key, value *pongo2.Value) bool {
		if failed = r.iterate(ctx, n.pos); failed != nil {
			return false
		}
		loop.Private[n.key] = key
		if value != nil && n.value != "" {
			loop.Private[n.value] = value
		}
		info.Counter, info.Counter0 = idx+1, idx
		info.Revcounter, info.Revcounter0 = count-idx, count-idx-1
		if idx == 1 {
			info.First = false
		}
		if idx+1 == count {
			info.Last = true
		}
		failed = n.body.Execute(loop, w)
		return failed == nil
	}, func() {
		if n.empty != nil {
			failed = n.empty.Execute(loop, w)
		}
	}, n.reversed, n.sorted)
	return failed
}

// iterate charges one loop iteration to the spec and checks its clock.
func (r *Renderer) iterate(ctx *pongo2.ExecutionContext, tok *pongo2.Token) *pongo2.Error {
	r.iterations++
	if r.iterations > r.limits.Iterations {
		return fail(ctx, tok, r.spend(tok.Line, fmt.Sprintf("loops ran more than %d times in this spec's templates", r.limits.Iterations)))
	}
	if err := r.checkTime(); err != nil {
		return fail(ctx, tok, err)
	}
	return nil
}

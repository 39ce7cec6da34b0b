// The widget's accessibility, audited by axe-core (@axe-core/playwright)
// against WCAG 2.2 A and AA: a state with a serious or critical violation
// fails the test that reached it, naming each rule and element.

import AxeBuilder from "@axe-core/playwright";

const TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];
const BLOCKING = new Set(["serious", "critical"]);

/**
 * Audits the widget's iframe (`frame`: the test host's, or Element's) on
 * `page`; throws on any serious or critical violation. The host around it is
 * not ours and is not audited.
 */
export async function auditWidget(page, state, frame = "#widget-frame") {
  const results = await new AxeBuilder({ page }).include(frame).withTags(TAGS).analyze();
  const blocking = results.violations.filter((v) => BLOCKING.has(v.impact));
  if (blocking.length > 0) {
    const lines = blocking.map((v) => `- ${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(" > ")).join("; ")}`);
    throw new Error(`accessibility, ${state}: ${blocking.length} serious or critical violations\n${lines.join("\n")}`);
  }
  return results.violations.length;
}

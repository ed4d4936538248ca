// The source form's rules editor: when the kind changes, a rules box that is empty (or still
// holds another kind's example) gets the chosen kind's complete example. Rules someone wrote
// are never replaced. The examples come from <script id="rules-examples" type="application/json">.

const kind = document.getElementById("id_kind");
const rules = document.getElementById("id_rules");
const data = document.getElementById("rules-examples");

function normal(text) {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return null;
  }
}

if (kind && rules && data) {
  const examples = JSON.parse(data.textContent);
  const known = new Set(Object.values(examples).map((example) => JSON.stringify(example)));
  const swap = () => {
    const current = rules.value.trim();
    if (current && !known.has(normal(current))) return;
    const example = examples[kind.value];
    if (example) rules.value = JSON.stringify(example, null, 2);
  };
  kind.addEventListener("change", swap);
  if (!rules.value.trim()) swap();
}

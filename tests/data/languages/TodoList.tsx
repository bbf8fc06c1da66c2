import { useState } from "react";

interface Todo {
  id: number;
  title: string;
  done: boolean;
}

export function TodoList({ initial }: { initial: Todo[] }) {
  const [todos, setTodos] = useState<Todo[]>(initial);
  const [draft, setDraft] = useState("");

  function add() {
    const title = draft.trim();
    if (!title) {
      return;
    }
    setTodos([...todos, { id: Date.now(), title, done: false }]);
    setDraft("");
  }

  function toggle(id: number) {
    setTodos(todos.map((todo) => (todo.id === id ? { ...todo, done: !todo.done } : todo)));
  }

  return (
    <div className="todos">
      <input value={draft} onChange={(event) => setDraft(event.target.value)} />
      <button onClick={add}>Add</button>
      <ul>
        {todos.map((todo) => (
          <li key={todo.id} onClick={() => toggle(todo.id)}>
            {todo.done ? <s>{todo.title}</s> : todo.title}
          </li>
        ))}
      </ul>
    </div>
  );
}

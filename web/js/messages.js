// The message list: how a message looks, and keeping the view at the bottom.

import { $, chat } from "./state.js";

const scroller = $("scroller");
const jumpButton = $("jump-btn");

const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayAndTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

function timeElement(iso) {
  const element = document.createElement("time");
  element.className = "time";
  const date = iso ? new Date(iso) : null;
  if (date && !Number.isNaN(date.getTime())) {
    element.dateTime = iso;
    element.title = full.format(date);
    element.textContent = date.toDateString() === new Date().toDateString() ? timeOnly.format(date) : dayAndTime.format(date);
  }
  return element;
}

export function messageItem(message) {
  const item = document.createElement("li");
  item.dataset.id = message.id;
  if (message.username && message.username === chat.username) item.classList.add("mine");
  const meta = document.createElement("div");
  meta.className = "meta";
  const name = document.createElement("span");
  name.className = "author";
  name.textContent = message.username ?? "anonymous"; // text, never markup
  meta.append(name, timeElement(message.createdAt));
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = message.text;
  item.append(meta, body);
  return item;
}

export function markSent(item) {
  item.classList.remove("pending");
  item.classList.add("sent");
  if (!item.querySelector(".state")) {
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = "✓ sent";
    item.querySelector(".meta").append(state);
  }
}

export function atBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
}

export function scrollToBottom() {
  scroller.scrollTop = scroller.scrollHeight;
  jumpButton.hidden = true;
}

/// A message arrived below the view: offer to jump to it.
export function showJumpButton() {
  jumpButton.hidden = false;
}

scroller.addEventListener("scroll", () => {
  if (atBottom()) jumpButton.hidden = true;
});
jumpButton.addEventListener("click", () => {
  scrollToBottom();
  $("input").focus();
});

function hl(n,on){document.querySelectorAll('[data-f="'+n+'"]').forEach(e=>e.classList.toggle('hl',on));}
document.querySelectorAll('[data-f]').forEach(e=>{e.addEventListener('mouseenter',()=>hl(e.dataset.f,true));
e.addEventListener('mouseleave',()=>hl(e.dataset.f,false));});
